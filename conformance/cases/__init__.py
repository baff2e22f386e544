"""Case files: YAML reading, schema, validation and seeded generators."""
from conformance.cases.loader import Case, CaseError, case_files, load_case_file, load_cases
from conformance.cases.pinned import Pinned

__all__ = ["Case", "CaseError", "Pinned", "case_files", "load_case_file", "load_cases"]
