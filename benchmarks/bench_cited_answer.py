"""How long a cited answer takes: generation, ablations and gradient, with 5 passages of about 200 tokens.

    python benchmarks/bench_cited_answer.py                      # the defaults of answer(), 2 threads
    python benchmarks/bench_cited_answer.py --gradient --ablations 32 --threads 1 --json timing.json

Prints the answer, its citations and flags, each passage's ablation weight and gradient share, the
surrogate's fit (LDS, R^2), and the seconds of each stage. Also times the ablations without prefix sharing
(``--compare-sharing``) to show what the shared key/value caches save.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from clearlm.knowledge.answer import DEFAULT_ABLATIONS, answer, passage_sources
from clearlm.knowledge.passage import Passage
from clearlm.models import DEFAULT_MODEL, load_backend
from clearlm.models.backends.torch_scoring import response_logprobs

QUESTION = "Where does dpkg keep its database of installed packages?"
PASSAGES = [
    (
        "Package management > dpkg",
        "dpkg is the low-level tool that installs, removes and inspects Debian packages. It works on single "
        ".deb files and keeps its database of installed packages under /var/lib/dpkg. It knows nothing about "
        "repositories: if a package depends on another that is not installed, dpkg stops with an error "
        "instead of fetching the missing package. Administrators rarely call dpkg directly to install "
        "software; they use it to list installed packages with dpkg -l, to find which package owns a file "
        "with dpkg -S, and to reconfigure a package with dpkg-reconfigure. Because it does not resolve "
        "dependencies, dpkg is safe to use in scripts that must not change anything beyond the one package "
        "they name, and it is the layer every higher-level tool eventually calls to unpack files onto disk. Its log, "
        "/var/log/dpkg.log, records every installation, upgrade and removal with a timestamp, which helps "
        "when tracing what changed on a machine before a problem appeared.",
    ),
    (
        "Package management > apt-get upgrade",
        "apt-get upgrade installs the newest versions of all packages currently installed on the system "
        "from the sources listed in /etc/apt/sources.list. Packages that are already installed are "
        "retrieved and upgraded, but under no circumstances are currently installed packages removed, and "
        "packages that are not yet installed are never installed by this command. If a new version of an "
        "installed package needs a new dependency or conflicts with an installed package, that package is "
        "kept back at its current version. To upgrade such packages as well, use apt-get dist-upgrade or "
        "apt full-upgrade, which may install new packages and remove existing ones to resolve the changed "
        "dependencies. Running apt-get update first refreshes the package lists so that upgrade sees the "
        "newest versions. The -s option simulates the upgrade and prints what would happen without changing "
        "anything, and the packages that are kept back are listed at the end of the output.",
    ),
    (
        "Package management > sources.list",
        "The file /etc/apt/sources.list and the files in /etc/apt/sources.list.d name the repositories APT "
        "downloads packages from. Each line gives an archive type (deb for binary packages, deb-src for "
        "source packages), a URL, a suite such as bookworm or stable, and one or more components such as "
        "main, contrib and non-free-firmware. Newer systems may use the deb822 format instead, with files "
        "ending in .sources that hold the same information as fields. After editing these files, run "
        "apt-get update so that APT downloads the new package lists. Mixing suites, for example stable and "
        "testing, is possible with pinning, but it can lead to dependency problems that are hard to untangle, "
        "so the Debian documentation advises against it on production machines. Third-party "
        "repositories should be signed, with their keys stored under /etc/apt/keyrings and named in a "
        "signed-by option, so that a key trusted for one repository cannot vouch for another.",
    ),
    (
        "System administration > systemd",
        "systemd is the init system and service manager of Debian. It starts services in parallel at boot, "
        "supervises them while they run, and restarts them when they fail if their unit file asks for it. "
        "Services are described by unit files under /lib/systemd/system, and local overrides go to "
        "/etc/systemd/system. The command systemctl starts, stops, enables and disables units, and "
        "systemctl status shows whether a service is running along with its most recent log lines. The "
        "journal, read with journalctl, collects the output of every service in one indexed log, which can "
        "be filtered by unit, priority or time. Timers can replace cron jobs and record when each run "
        "happened and whether it succeeded, and sockets let a service start on its first connection. A unit that keeps failing is "
        "marked as failed and listed by systemctl --failed, and systemctl reset-failed clears that state once "
        "the cause has been fixed.",
    ),
    (
        "Networking > network configuration",
        "A Debian system can configure its network in several ways. The classic ifupdown package reads "
        "/etc/network/interfaces, where each interface is declared with a method such as dhcp or static and "
        "brought up with ifup. Desktop installations usually use NetworkManager instead, which handles "
        "wireless networks, VPNs and roaming between networks, and can be driven with the nmcli command. "
        "systemd-networkd is a lighter alternative suited to servers and containers, configured with .network "
        "files under /etc/systemd/network. Whatever the tool, name resolution is set in /etc/resolv.conf, "
        "which may be generated by resolvconf or systemd-resolved. Only one of these managers should control "
        "a given interface, or they will fight over its addresses and routes. The ip command from iproute2 shows "
        "the current addresses, links and routes whichever manager set them, and replaces the older ifconfig "
        "and route commands from net-tools.",
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablations", type=int, default=DEFAULT_ABLATIONS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gradient", action="store_true", help="also the gradient view (off by default)")
    parser.add_argument("--compare-sharing", action="store_true")
    parser.add_argument("--json", help="write the timings here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backend = load_backend(DEFAULT_MODEL)
    passages = [
        Passage(
            f"p{i}", text, "debian-reference.txt", "Debian Reference", tuple(h.split(" > ")), 0, len(text)
        )
        for i, (h, text) in enumerate(PASSAGES)
    ]
    sizes = [len(backend.tokenizer(p.text)["input_ids"]) for p in passages]
    started, cpu = time.perf_counter(), time.process_time()
    result = answer(backend, QUESTION, passages, ablations=args.ablations, gradient=args.gradient)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    attribution = result.attribution
    print(f"passages: {len(passages)}, tokens each: {sizes}")
    print(f"answer ({result.finish_reason}): {result.text!r}")
    print(
        f"cited: {result.cited}, unknown: {result.unknown_citations}, top attributed: {result.top_attributed()}"
    )
    for s in result.support:
        print(
            f"  [{s.number}] weight {s.weight:+.3f}  gradient share {s.gradient_share:+.3f}  "
            f"cited={s.cited} relied={s.relied} flag={s.flag}"
        )
    print(
        f"ablations: {attribution.n_ablations} (exact: {attribution.exact}), LDS {attribution.lds:.3f}, "
        f"R^2 {attribution.r2:.3f}"
    )
    timing = {
        "total": total,
        "cpu_total": cpu,  # CPU seconds of this process (all threads): less sensitive to other load
        "generate": result.seconds["generate"],
        **{k: v for k, v in attribution.seconds.items()},
        "answer_tokens": len(attribution.response_ids),
        "prompt_tokens": attribution.source_spans[-1][1],
        "ablations": attribution.n_ablations,
        "threads": args.threads,
    }
    if args.compare_sharing:
        sources = passage_sources(QUESTION, passages)
        prompts = [backend.encode(sources.render(m)).token_ids for m in attribution.masks]
        for share in (True, False):
            stats: dict = {}
            t0 = time.perf_counter()
            response_logprobs(
                backend.model, prompts, attribution.response_ids, share_prefixes=share, stats=stats
            )
            timing[f"ablation_forwards_{'shared' if share else 'unshared'}"] = time.perf_counter() - t0
            timing[f"tokens_{'shared' if share else 'unshared'}"] = stats["tokens"]
    print(
        "seconds: "
        + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in timing.items())
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(timing, f, indent=2)


if __name__ == "__main__":
    main()
