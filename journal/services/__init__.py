"""Use cases, of two kinds, and nothing in between (tests/test_architecture.py holds both rules):

- A use case takes a Session, may flush, and never commits, rolls back, begins or closes it:
  the caller (the web layer, the CLI or a job) owns the transaction, as in
  `with factory() as session, session.begin(): ...`.
- A job is long work that commits in steps on purpose (an import, an upload batch, an export,
  a send, a sweep, a check or repair, a track import; the data home's identity, which the
  database holds before .journal-home does). It is named run_* and takes the session factory
  (`sessionmaker[Session]`), opening its own short transactions, so that no transaction stays
  open for the whole run and what is done stays done when a later step fails. Private helpers
  (`_x`) of a job module may take the factory too, for the jobs only.
"""
