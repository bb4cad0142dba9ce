"""lib.device.cpu_kernels: what a run records about the CPU's kernels."""

import torch

from lib.device import cpu_kernels

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse4_2 avx2 fma avx512f avx512bw avx512_bf16 sha_ni
processor\t: 1
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse4_2 avx2 fma avx512f avx512bw avx512_bf16 sha_ni
"""


def test_cpu_kernels_reads_the_model_and_only_the_vector_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    kernels = cpu_kernels(str(info))
    assert kernels == {"capability": torch.backends.cpu.get_cpu_capability(), "model": "AMD EPYC 9B14",
                       "flags": ["avx2", "fma", "avx512f", "avx512bw", "avx512_bf16"]}


def test_cpu_kernels_without_cpuinfo_still_names_torchs_capability(tmp_path):
    kernels = cpu_kernels(str(tmp_path / "missing"))
    assert kernels == {"capability": torch.backends.cpu.get_cpu_capability(), "model": "", "flags": []}
