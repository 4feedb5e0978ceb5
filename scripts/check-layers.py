#!/usr/bin/env python3
"""Checks the include rules that ARCHITECTURE.md describes, so that the layering cannot rot.

- app -> ui -> src; src never includes ui/ or Qt Widgets.
- Within src/, each domain folder includes only the domains listed for it below.
- Only src/torch/ includes libtorch (<torch/...>, <ATen/...>, <c10/...>), and no header outside
  src/torch/ includes OpenCV: the torch-free headers stay cheap for ui/, app/ and tests.
- Outside src/torch/, only torch/runtime.h (torch-free) of src/torch/ is included.
- ui/<domain>/ includes the core, ui/common/ and its own folder; only mainwindow sees them all.

Usage: scripts/check-layers.py   (CTest runs it as the `layers` test; exit 1 names each violation)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The domains of the core and what each may include (besides itself). Keep in step with
# ARCHITECTURE.md.
CORE = {
    'base': set(),
    'image': {'base'},
    'dataset': {'base', 'image'},
    'transforms': {'base', 'image', 'dataset'},
    'checkpoint': {'base'},
    'training': {'base', 'image', 'dataset', 'transforms', 'checkpoint'},
    'torch': {'base', 'image', 'dataset', 'transforms', 'checkpoint', 'training'},
}
UI = {'common', 'datasets', 'transforms', 'checkpoints', 'training'}
# The one header of src/torch/ that others may include: it is torch-free. Everything else there
# pulls in <torch/torch.h>.
TORCH_PUBLIC = {'torch/runtime.h'}
# A ui domain may reuse another's widget when it says so here.
UI_SHARED: set[tuple[str, str]] = set()

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
TORCH = re.compile(r'^(torch|ATen|c10|caffe2)/')


def includes(path):
    text = path.read_text(encoding='utf-8', errors='replace')
    for m in INCLUDE.finditer(text):
        line = text.count('\n', 0, m.start()) + 1
        yield line, m.group(1) == '<', m.group(2)


def check():
    problems = []

    def bad(path, line, why):
        problems.append(f'{path.relative_to(ROOT)}:{line}: {why}')

    for path in sorted((ROOT / 'src').rglob('*')):
        if path.suffix not in ('.h', '.cpp'):
            continue
        parts = path.relative_to(ROOT / 'src').parts
        if len(parts) < 2 or parts[0] not in CORE:
            bad(path, 1, 'core files live in a domain folder: ' + ', '.join(sorted(CORE)))
            continue
        domain = parts[0]
        allowed = CORE[domain] | {domain}
        for line, system, name in includes(path):
            if system:
                if TORCH.match(name) and domain != 'torch':
                    bad(path, line, f'<{name}>: only src/torch/ includes libtorch')
                if name.startswith('opencv2/') and path.suffix == '.h' and domain != 'torch':
                    bad(path, line, f'<{name}> in a header: keep OpenCV behind a .cpp (pimpl)')
                if name.startswith('QtWidgets') or name.startswith('QWidget'):
                    bad(path, line, f'<{name}>: the core does not use Qt Widgets')
                continue
            head = name.split('/')[0]
            if head not in CORE:
                bad(path, line, f'"{name}": the core includes only core headers')
            elif head not in allowed:
                bad(path, line, f'"{name}": src/{domain}/ may include only '
                                + ', '.join(sorted(allowed)))

    for path in sorted((ROOT / 'ui').rglob('*')):
        if path.suffix not in ('.h', '.cpp'):
            continue
        parts = path.relative_to(ROOT / 'ui').parts
        domain = parts[0] if len(parts) > 1 else None
        if domain is not None and domain not in UI:
            bad(path, 1, 'ui files live in ui/ (main window) or ' + ', '.join(sorted(UI)))
            continue
        for line, system, name in includes(path):
            if system:
                if TORCH.match(name):
                    bad(path, line, f'<{name}>: ui/ reaches libtorch only through src/torch/')
                continue
            if name.startswith('torch/') and name not in TORCH_PUBLIC:
                bad(path, line, f'"{name}" is private to src/torch/ (it includes libtorch)')
            if domain is None or not (ROOT / 'ui' / name).is_file():
                continue
            head = name.split('/')[0]
            if head not in ('common', domain) and (domain, name) not in UI_SHARED:
                bad(path, line, f'"{name}": ui/{domain}/ includes the core, ui/common/ and '
                                f'ui/{domain}/, not ui/{head}/')

    for folder in ('app', 'tests', 'bench'):
        for path in sorted((ROOT / folder).rglob('*')):
            if path.suffix not in ('.h', '.cpp') or 'fuzz' in path.parts:
                continue
            for line, system, name in includes(path):
                if not system and name.startswith('torch/') and name not in TORCH_PUBLIC:
                    bad(path, line, f'"{name}" is private to src/torch/ (it includes libtorch)')
                if folder == 'app' and 'cli' in path.parts and not system \
                        and (ROOT / 'ui' / name).is_file():
                    bad(path, line, f'"{name}": the CLI links the core only')
    return problems


if __name__ == '__main__':
    found = check()
    for p in found:
        print(p, file=sys.stderr)
    if found:
        print(f'{len(found)} include(s) break the layering (see ARCHITECTURE.md)', file=sys.stderr)
        sys.exit(1)
    print('The includes follow the layering in ARCHITECTURE.md')
