# Sourced by the peer scripts: fetches llama-cpp-python's sdist (which vendors llama.cpp)
# once into $peers/src and unpacks it. Needs: peers (folder), want (version), py (python
# with pip). Sets: version, srcdir, llama (the vendored llama.cpp), commit.
sdist="$(ls "$peers"/src/llama_cpp_python-"$want".tar.gz 2>/dev/null || true)"
if [[ -z "$sdist" ]]; then
  if ! "$py" -m pip download --no-binary :all: --no-deps "llama-cpp-python==$want" -d "$peers/src" >&2; then
    echo "llama-cpp-python==$want not available; taking the newest sdist" >&2
    "$py" -m pip download --no-binary :all: --no-deps llama-cpp-python -d "$peers/src" >&2
  fi
  sdist="$(ls -t "$peers"/src/llama_cpp_python-*.tar.gz | head -1)"
fi
version="$(basename "$sdist" .tar.gz)"; version="${version#llama_cpp_python-}"
srcdir="$peers/llama_cpp_python-$version"
[[ -d "$srcdir/vendor/llama.cpp/ggml" ]] || tar -xzf "$sdist" -C "$peers"
llama="$srcdir/vendor/llama.cpp"
# The sdist carries llama.cpp's git metadata; the CHANGELOG names the commit as well.
commit="$(git -C "$llama" rev-parse HEAD 2>/dev/null || true)"
[[ -n "$commit" ]] || commit="$(grep -m1 -o 'llama.cpp@[0-9a-f]*' "$srcdir/CHANGELOG.md" | cut -d@ -f2 || echo unknown)"
