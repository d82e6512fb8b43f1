#!/bin/sh
# Writes the gatehouse(1) man page from the built binary's own --help and --version, so
# the page describes exactly the commands and options that binary has.
#   packaging/manpage.sh BINARY EXTRA.h2m OUTPUT.1
# help2man formats `gatehouse --help` (NAME, SYNOPSIS, DESCRIPTION, the global options).
# Every command's `--help`, found by walking the "Subcommands:" lists, becomes a
# subsection of COMMANDS; EXTRA.h2m adds the hand-written FILES and SEE ALSO sections.
set -eu
bin=$1
extra=$2
out=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" --help >"$tmp/top"

# The subcommands a help text lists, one per line.
subcommands() {
  awk '/^Subcommands:/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }' "$1"
}

# One command's help as roff: options and positionals as tagged paragraphs, the rest as
# text. The footer every command repeats from the top-level help is left out.
to_roff() { # TITLE HELPFILE
  awk -v title="$1" -v topfile="$tmp/top" '
    function esc(s) {
      gsub(/\\/, "\\e", s)
      gsub(/-/, "\\-", s)
      if (s ~ /^[.'"'"']/) s = "\\&" s
      return s
    }
    function flush() {
      if (tag != "") { print ".TP"; print tag; if (desc != "") print esc(desc) }
      tag = ""; desc = ""
    }
    BEGIN {
      while ((getline line < topfile) > 0) if (line ~ /^[^ ]/) top[line] = 1
      print ".SS \"" title "\""
    }
    /^$/ { flush(); next }
    /^  [^ ]/ {
      flush()
      line = substr($0, 3)
      split_at = match(line, /  +/)
      if (split_at) { name = substr(line, 1, split_at - 1); desc = substr(line, split_at + RLENGTH) }
      else { name = line; desc = "" }
      n = index(name, " ")
      if (n) tag = "\\fB" esc(substr(name, 1, n - 1)) "\\fR " esc(substr(name, n + 1))
      else tag = "\\fB" esc(name) "\\fR"
      next
    }
    /^    / {
      sub(/^ +/, "")
      desc = desc == "" ? $0 : desc " " $0
      next
    }
    {
      flush()
      if ($0 in top) next
      if ($0 ~ /^(Options|Positionals|Subcommands):$/) { print ".PP"; print "\\fI" $0 "\\fR"; next }
      if ($0 ~ /^Usage: /) { print ".PP"; print "\\fB" esc(substr($0, 8)) "\\fR"; next }
      print ".PP"; print esc($0)
    }
    END { flush() }
  ' "$2"
}

walk() { # HELPFILE WORDS...
  help=$1
  shift
  for sub in $(subcommands "$help"); do
    "$bin" "$@" "$sub" --help >"$tmp/help"
    to_roff "$(echo gatehouse "$@" "$sub")" "$tmp/help" >>"$tmp/commands"
    saved="$tmp/help.$(echo "$@" "$sub" | tr ' ' _)"
    mv "$tmp/help" "$saved"
    walk "$saved" "$@" "$sub"
  done
}

: >"$tmp/commands"
walk "$tmp/top"

{
  echo "[COMMANDS]"
  echo ".nh"
  cat "$tmp/commands"
  cat "$extra"
} >"$tmp/include.h2m"

# help2man names the program after the file it runs; run it as "gatehouse". The version
# is the first line of --version (the others name the build, not wanted in the page).
mkdir "$tmp/bin"
ln -s "$(readlink -f "$bin")" "$tmp/bin/gatehouse"
version=$("$bin" --version | head -n 1 | cut -d ' ' -f 2)
help2man --no-info --section=1 --no-discard-stderr --version-string="$version" \
  --name="OAuth2 password-flow token server compatible with FastAPI's security tutorial" \
  --include="$tmp/include.h2m" --output="$out" "$tmp/bin/gatehouse"
