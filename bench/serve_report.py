"""The serving benchmark's printed summary: the machine, then every figure of the run."""

from __future__ import annotations

from bench.resolution import report as resolution_line


def machine_line(m: dict) -> str:
    sets = ", ".join(m.get("instruction_sets") or []) or "none of those looked for"
    return (
        f"machine: {m.get('cpu_model') or 'unknown CPU'}, {m.get('cpus')} CPUs, instruction sets {sets}; "
        f"Python {m.get('python', '?')}, load average {', '.join(f'{x:.2f}' for x in m.get('load_avg', ()))}"
    )


def report(result: dict) -> None:
    comp, e2e, cold = result["compute"], result["end_to_end"], result["cold_start"]
    print(machine_line(result["machine"]))
    print(
        f"compute p50/p95 ms: ORT {comp['serving_model']} "
        f"{comp['ort_serving']['p50_ms']}/{comp['ort_serving']['p95_ms']}"
        f", ORT 1 thread {comp['ort_one_thread']['p50_ms']}/{comp['ort_one_thread']['p95_ms']}, eager PyTorch "
        f"{comp['torch_eager']['p50_ms']}/{comp['torch_eager']['p95_ms']} ({comp['speedup_x']}x); "
        f"preprocess {comp['preprocess']['p50_ms']}/{comp['preprocess']['p95_ms']}"
    )
    print(
        f"end to end ({e2e['target']}, {e2e['url']}): c=1 p50 {e2e['c1']['p50_ms']} ms, p95 {e2e['c1']['p95_ms']} ms; "
        f"c={e2e['c8']['concurrency']} {e2e['c8']['rps']} req/s, p50 {e2e['c8']['p50_ms']} ms, "
        f"p95 {e2e['c8']['p95_ms']} ms, {e2e['c8']['errors']} errors"
    )
    cpu = e2e["c8"]["cpu"]
    print(
        f"CPU per request at c={e2e['c8']['concurrency']}: "
        + ", ".join(f"{name} {ms} ms" for name, ms in cpu["ms_per_request"].items())
        + f" = {cpu['total_ms']} ms: {cpu['cpus']} CPUs serve at most {cpu['ceiling_rps']} req/s"
    )
    ids = e2e.get("request_ids")
    if ids:
        print(
            f"{ids['requests']} requests at c={ids['concurrency']} through the API: {ids['errors']} errors, "
            f"{ids['mismatched']} answers with another request's id, {ids['rps']} req/s ({ids['statuses']})"
        )
    if result.get("resolution"):
        print(resolution_line(result["resolution"]))
    print(f"cold start: {cold['runs_s']} s (folder), {cold['model_tar_gz_s']} s (model.tar.gz)")
    scope = "" if e2e["target"] == "api" else "  (model server only: the floors are for the whole API)"
    print(f"floors{scope}:")
    for v in result["floors"]:
        print(f"  {'PASS' if v['pass'] else 'FAIL'}  {v['name']:<18} {v['value']!s:>10}  {v['floor']}")
