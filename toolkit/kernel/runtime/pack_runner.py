"""A pack kernel's work: each member's training code as its own process, one per GPU when there are enough
(a Kaggle T4 x2 has two), else one after another; every line relayed with the member's `[slug] ` prefix; and
pack.json (see the output contract) saying how each run ended, so one run's failure never costs its
partner's finished outputs.

Pasted into pack kernels (see render.runtime_source): imports only what Kaggle's image has.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

from ..contract import PACK_COMPLETE, PACK_ERROR, PACK_FILE, TTA_FILE, check_pack
from .failures import ERROR_LINE, cause


def start_member(slug, code, gpu):
    "Start one run as its own process; the scripts live outside the working directory (not outputs)."
    script = Path(tempfile.mkdtemp()) / f'{slug}.py'
    script.write_text(code)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if gpu is not None:
        env['CUDA_VISIBLE_DEVICES'] = str(gpu)
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def relay(slug, process, tail):
    "Print the process's lines under its slug, keeping the last ones for the failure's cause."
    for line in process.stdout:
        tail.append(line.rstrip())
        print(f'[{slug}] {line}', end='', flush=True)


def failure_line(tail, code):
    "Why a run failed: the last exception line it printed, else how it ended."
    if code < 0:
        return f'killed by signal {-code} (out of memory?)'
    if any(ERROR_LINE.match(line.strip()) for line in tail):
        return cause('\n'.join(tail), 500)
    return f'exit code {code}'


def run_members(members, gpus):
    "Exit codes and output tails of each member (slug -> code), run at once on `gpus` GPUs when there are enough."
    tails = {slug: collections.deque(maxlen=200) for slug in members}
    if gpus >= len(members):
        processes = {slug: start_member(slug, code, gpu) for gpu, (slug, code) in enumerate(members.items())}
        threads = [threading.Thread(target=relay, args=(slug, p, tails[slug])) for slug, p in processes.items()]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        return {slug: p.wait() for slug, p in processes.items()}, tails
    codes = {}
    for slug, code in members.items():
        process = start_member(slug, code, None)
        relay(slug, process, tails[slug])
        codes[slug] = process.wait()
    return codes, tails


def run_pack(members, gpus=None, out_dir='.'):
    """Train every member (slug -> its rendered training code, writing into `<slug>/`), write pack.json and
    return it; fails only when every run failed."""
    gpus = torch.cuda.device_count() if gpus is None else gpus
    together = gpus >= len(members)
    print(f'{len(members)} runs on {gpus} GPU(s): ' + ('at once, one GPU each' if together else 'one after another'))
    codes, tails = run_members(members, gpus)
    results = {}
    for slug, code in codes.items():
        finished = code == 0 and (Path(out_dir) / slug / TTA_FILE).is_file()
        results[slug] = {'status': PACK_COMPLETE if finished else PACK_ERROR, 'exit_code': code,
                         'message': '' if finished else failure_line(tails[slug], code)}
    (Path(out_dir) / PACK_FILE).write_text(json.dumps(check_pack(results), indent=2))
    for slug, result in results.items():
        print(f'{slug}: {result["status"]}' + (f': {result["message"]}' if result['message'] else ''))
    if all(r['status'] == PACK_ERROR for r in results.values()):
        raise RuntimeError('every run failed: ' + '; '.join(f'{s}: {r["message"]}' for s, r in results.items()))
    return results
