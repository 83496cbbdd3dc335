#!/usr/bin/env bash
# Checks docs/tutorial.md ($1) against the tutorial's programs:
# - every ```cpp block follows a marker line `<!-- code: PATH -->` and is,
#   line for line, a contiguous part of PATH (a source file here);
# - every ```text block follows `<!-- output: PATH -->` and is a contiguous
#   part of PATH (a step's expected output, which its own test pins);
# - every examples/tutorial/step*.cc is shown by at least one block.
# So editing a program without its block (or the reverse) fails this test.
# Paths are relative to the workspace root (the test's working directory).
set -uo pipefail
md=$1
failures=0
blocks=0
fail() {
  echo "FAIL: $md:$1: $2" >&2
  failures=$((failures + 1))
}

marker=""       # the path named by the last marker line, until a block uses it
marker_kind=""  # code or output
lineno=0
in_block=""     # the fence's language while inside a block
block=""
block_start=0
shown=" "
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  if [[ -n $in_block ]]; then
    if [[ $line == '```' ]]; then
      blocks=$((blocks + 1))
      want=$([[ $in_block == cpp ]] && echo code || echo output)
      if [[ -z $marker || $marker_kind != "$want" ]]; then
        fail "$block_start" "a \`\`\`$in_block block needs a '<!-- $want: PATH -->' line just before it"
      elif [[ ! -f $marker ]]; then
        fail "$block_start" "'$marker' does not exist (is it in the test's data?)"
      else
        # Compare whole lines: both sides start with a newline.
        file=$'\n'$(cat "$marker")$'\n'
        if [[ $file != *$'\n'"$block"* ]]; then
          fail "$block_start" "this \`\`\`$in_block block is not verbatim in $marker"
        fi
        shown+="$marker "
      fi
      in_block=""
      marker=""
      continue
    fi
    block+="$line"$'\n'
    continue
  fi
  if [[ $line =~ ^\<!--\ (code|output):\ ([^ ]+)\ --\>$ ]]; then
    marker_kind=${BASH_REMATCH[1]}
    marker=${BASH_REMATCH[2]}
    continue
  fi
  if [[ $line =~ ^\`\`\`(cpp|text)$ ]]; then
    in_block=${BASH_REMATCH[1]}
    block=""
    block_start=$lineno
    continue
  fi
  # A marker applies to the block right after it (blank lines allowed).
  [[ -n $line ]] && marker=""
done <"$md"

[[ -z $in_block ]] || fail "$block_start" "unterminated \`\`\`$in_block block"
[[ $blocks -gt 0 ]] || fail 0 "no \`\`\`cpp or \`\`\`text blocks found"
for src in examples/tutorial/step*.cc; do
  [[ $shown == *" $src "* ]] || fail 0 "$src is not shown by any block"
done

if [[ $failures -gt 0 ]]; then
  echo "$failures problem(s) in $md" >&2
  exit 1
fi
echo "OK: $blocks blocks in $md match their files"
