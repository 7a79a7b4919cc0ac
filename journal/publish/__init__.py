"""Publishing posts: everything an export bundle is made of, below the export use case.

Platform presets and caption rules (platforms), the location policy (location), the JPEG
metadata scrubber (scrub), the files made for a bundle (exportfiles) and the leak check that
re-reads them (leaks), batching by size (batching), the streaming sinks (streams), the zip bundle
(zipbundle) and the e-mail bundle (emailbundle) with its MIME and SMTP side (mail).

Plain modules: they know files, never a database session, a request or the command line
(services/exporting.py runs an export and imports from here).
"""
