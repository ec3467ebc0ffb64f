"""``report.md`` and the README's results table, from the results directories of ``bgbench eval``.

The package's modules: ``paper`` (the paper's numbers, titles and colours), ``grouping``
(results entries grouped by dataset, method and preset), ``tables`` (the Markdown tables of
accuracies), ``invariance`` (spread, paired comparisons, flip rate and calibration),
``figures`` (the PNG figures), ``markdown`` (the report: ``report_markdown``,
``write_report``) and ``readme`` (``readme_results``, ``update_readme``).
"""

from bgbench.report.grouping import WorstCaseResults, group_entries, load_entries
from bgbench.report.markdown import report_markdown, write_report
from bgbench.report.readme import readme_results, update_readme, with_readme_results

__all__ = ["WorstCaseResults", "group_entries", "load_entries", "readme_results",
           "report_markdown", "update_readme", "with_readme_results", "write_report"]
