import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

torch.set_num_threads(int(os.environ.get("ANIMLONG_TEST_THREADS", "2")))

# If xformers were importable, ldm would take a path that crashes on CPU.
import ldm.modules.attention as _ldm_attention  # noqa: E402

_ldm_attention.XFORMERS_IS_AVAILBLE = False


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
