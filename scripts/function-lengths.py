#!/usr/bin/env python3
"""Lists the functions longer than a limit (default 150 lines) in src/ and app/ (or given folders).

Works on clang-formatted code, where a function body opens with a line that holds only `{` and
closes with a `}` at the same indentation; lambdas count toward the function that holds them.
Usage: scripts/function-lengths.py [--limit N] [FOLDER ...]
CTest runs it as the `function-length` test: exit 1 when a function is over the limit.
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOT_A_FUNCTION = re.compile(r'^\s*(template<.*>\s*)?(class|struct|union|enum|namespace)\b|=\s*$')


def functions(path):
    lines = path.read_text(encoding='utf-8', errors='replace').splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == '{':
            indent = len(line) - len(line.lstrip())
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            # The signature may span lines; find where it starts (a line at the same indent).
            k = j
            while k > 0 and (len(lines[k]) - len(lines[k].lstrip()) > indent
                             or lines[k].lstrip().startswith((':', ','))):
                k -= 1
            signature = ' '.join(s.strip() for s in lines[k:j + 1])
            end = next((e for e in range(i + 1, len(lines))
                        if lines[e].rstrip() in (' ' * indent + '}', ' ' * indent + '};')), None)
            if end is None:
                i += 1
                continue
            if ')' in signature and not NOT_A_FUNCTION.search(lines[k]):
                yield k + 1, end - k + 1, signature[:100]
                i = end + 1
                continue
        i += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--limit', type=int, default=150)
    parser.add_argument('folders', nargs='*', default=['src', 'app'])
    args = parser.parse_args()
    over = []
    for folder in args.folders:
        for path in sorted((ROOT / folder).rglob('*')):
            if path.suffix in ('.cpp', '.h'):
                for line, length, signature in functions(path):
                    if length > args.limit:
                        over.append((length, f'{path.relative_to(ROOT)}:{line}', signature))
    for length, where, signature in sorted(over, reverse=True):
        print(f'{length:5d}  {where}  {signature}')
    if over:
        print(f'{len(over)} function(s) over {args.limit} lines: split them into named steps',
              file=sys.stderr)
        return 1
    print(f'No function in {", ".join(args.folders)} is over {args.limit} lines')
    return 0


if __name__ == '__main__':
    sys.exit(main())
