"""`fingercount samples list|stats|export DIR|remove [--label L | --sample REF] [--json]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.config import Config
from edge.errors import CommandError
from edge.samples import counts_text, open_store


def main(args: argparse.Namespace, cfg: Config) -> int:
    with open_store(cfg) as store:
        if args.action == "list":
            for s in store.list(args.label):
                if args.json:
                    print(json.dumps({"id": s.id, "label": s.label, "path": str(s.path), "sha256": s.sha256,
                                      "source": s.source, "time": s.time, "embedded": s.has_embedding}))
                else:
                    print(f"{s.label}\t{s.time}\t{s.source}\t{s.path}")
        elif args.action == "stats":
            st = store.stats()
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print(f"{st['total']} samples in {st['root']} ({st['bytes'] / 1e6:.1f} MB): "
                      f"{counts_text(st['per_label'])}")
        elif args.action == "remove":
            if args.label and args.sample:
                raise CommandError("samples remove takes --label L or --sample PATH|SHA256, not both")
            if not args.label and not args.sample:
                raise CommandError("samples remove needs --label L (all of its samples; export first to "
                                   "keep them) or --sample PATH|SHA256 (one)")
            if args.sample:
                gone = store.remove_sample(args.sample)
                left = store.counts()
                print(json.dumps({"removed": 1, "label": gone.label, "path": str(gone.path), "samples": left})
                      if args.json else f"removed {gone.path} (label {gone.label}); {counts_text(left)} left")
                return 0
            n = store.remove_label(args.label)
            left = store.counts()
            # Only a label the model did not ship with leaves the head at the next retrain: the
            # model's own labels stay, learnt from its base embeddings.
            print(json.dumps({"removed": n, "label": args.label, "samples": left}) if args.json else
                  f"removed {n} samples of label {args.label}; {counts_text(left)} left")
        else:
            if not args.dest:
                raise CommandError("samples export needs a target directory: fingercount samples export DIR")
            out = store.export(Path(args.dest), args.label)
            print(json.dumps({"exported": out, "dest": str(args.dest)}) if args.json else
                  f"exported {sum(out.values())} samples to {args.dest} ({counts_text(out)}), one "
                  "folder per label: the layout `fingercount-convert build RECIPE --data DIR` reads")
    return 0
