"""Regulator-ready PDF reports (docs/reports.md, decision 0013).

A report type is a builder (data dict) plus a template (``templates/reports/``), registered
in ``registry``. ``render`` turns the data into HTML and PDF pages; ``pdf`` makes the PDF/A-3b
file with the data embedded and signs it; ``governance.report_services`` runs it all as a job.
"""

import logging

# WeasyPrint logs every step at INFO, from its import on, and fontTools every table it prunes
# while subsetting fonts; a job's progress is on the Report row.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
logging.getLogger("fontTools").setLevel(logging.WARNING)
