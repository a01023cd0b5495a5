"""What machine a figure was measured on: CPU model, cores and the matrix extensions TF can use."""

import os
import platform


def describe_machine():
    """Describes this machine for a benchmark's output: CPU model, logical cores, AVX-512 and AMX.

    Read from ``/proc/cpuinfo`` on Linux (``platform.processor()`` elsewhere). AMX (Intel Advanced
    Matrix Extensions) is what makes bfloat16 convolutions several times faster than float32 on
    some Intel CPUs; AMD EPYC machines have no AMX.

    Returns:
        A dict ``{"cpu": str, "cores": int, "avx512": bool, "amx": bool}``.

    Example:
        >>> describe_machine()["cores"] >= 1
        True
    """
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if name and flags and key.strip() == "flags":
                    break
    except OSError:
        pass
    return {
        "cpu": name or "unknown",
        "cores": os.cpu_count() or 1,
        "avx512": "avx512f" in flags,
        "amx": bool({"amx_bf16", "amx_tile"} & flags),
    }
