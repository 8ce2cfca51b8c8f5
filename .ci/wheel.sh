#!/usr/bin/env bash
# CI: builds the release wheel with `maturin build --release`, checks its tag
# (manylinux_2_28 or older, abi3, x86_64) with maturin's own check and with
# auditwheel, installs it into a fresh virtual environment with no Rust
# toolchain on PATH, and runs the README quick start and `gnno train` from a
# directory outside the checkout, checking that gnno is the installed wheel.
#
# torch and numpy come from the system interpreter (--system-site-packages);
# the system may hold an editable gnno (a .pth naming a checkout), so every
# import of gnno is checked to resolve to the virtual environment.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
PY=$("${PYTHON:-python}" -c "import sys; print(sys.executable)")  # the system interpreter
t0=$SECONDS
stage() { printf '\n== wheel: %s (%ds)\n' "$1" "$((SECONDS - t0))"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stage "build tools"
# ziglang links the extension against glibc 2.28's symbol versions on any
# newer build host; auditwheel gives a second opinion on the tag.
if ! "$PY" -c "import ziglang, auditwheel" 2>/dev/null || ! command -v maturin >/dev/null; then
  "$PY" -m pip install -q "maturin>=1.9.4,<2" ziglang auditwheel
fi
maturin --version

stage "maturin build --release --zig"
# The tag (manylinux_2_28) and the audit mode (check) come from pyproject.toml.
maturin build --release --zig --out "$work/dist"
wheels=("$work"/dist/gnno-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "wheel: expected one wheel, got: ${wheels[*]}" >&2; exit 1; }
wheel=${wheels[0]}
name=$(basename "$wheel")
echo "built $name ($(du -k "$wheel" | cut -f1) KiB)"

stage "tag"
[[ $name =~ ^gnno-[^-]+-cp3[0-9]+-abi3-manylinux_2_([0-9]+)_x86_64\.whl$ ]] \
  || { echo "wheel: $name is not an abi3 manylinux x86_64 wheel" >&2; exit 1; }
wheel_glibc=${BASH_REMATCH[1]}
[ "$wheel_glibc" -le 28 ] || { echo "wheel: $name needs glibc 2.$wheel_glibc > 2.28" >&2; exit 1; }
unzip -p "$wheel" 'gnno-*.dist-info/WHEEL' | grep -x "Tag: cp3[0-9]*-abi3-manylinux_2_${wheel_glibc}_x86_64"
shown=$(auditwheel show "$wheel")
echo "$shown"
audit_glibc=$(sed -n 's/.*platform tag: *"manylinux_2_\([0-9]*\)_x86_64".*/\1/p' <<<"${shown//$'\n'/ }" | head -1)
[ -n "$audit_glibc" ] && [ "$audit_glibc" -le "$wheel_glibc" ] \
  || { echo "wheel: auditwheel does not confirm manylinux_2_$wheel_glibc" >&2; exit 1; }

stage "fresh virtual environment, no Rust on PATH"
# Every PATH entry that holds cargo or rustc is dropped.
path_no_rust=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -z "$d" ] || [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ] && continue
  path_no_rust=${path_no_rust:+$path_no_rust:}$d
done
# No pip of its own (quicker): the system's pip installs into it with --python.
"$PY" -m venv --system-site-packages --without-pip "$work/venv"
venv_py=$work/venv/bin/python
export PATH="$work/venv/bin:$path_no_rust"
export VIRTUAL_ENV=$work/venv
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH GNNO_SIMD
hash -r
if command -v cargo || command -v rustc; then
  echo "wheel: a Rust toolchain is still on PATH" >&2
  exit 1
fi
# --no-deps: numpy, torch and tqdm are the system's; --force-reinstall: a
# system gnno of the same version must not count as installed.
"$PY" -m pip --python "$venv_py" install -q --no-index --no-deps --force-reinstall "$wheel"

outside=$work/outside
mkdir -p "$outside"
cd "$outside"

# Prints where gnno and its extension were imported from; fails unless both
# lie in this virtual environment's site-packages and nowhere in the checkout.
check_import='
import sys, sysconfig
from pathlib import Path
import gnno, gnno._gnno
site = Path(sysconfig.get_paths()["platlib"]).resolve()
repo = Path(sys.argv[1]).resolve()
where = {m.__name__: Path(m.__file__).resolve() for m in (gnno, gnno._gnno)}
for name, path in where.items():
    print(f"{name}: {path}")
    if site not in path.parents or repo in path.parents:
        sys.exit(f"wheel: {name} came from {path}, not from {site}")
shadows = [p for p in sys.path if p and (Path(p) / "gnno" / "__init__.py").exists()
           and Path(p).resolve() != site]
for p in shadows:
    print(f"  also on sys.path, after the wheel: {p} (not used)")
'

stage "import check (and a control that the check can fail)"
"$venv_py" -I -c "$check_import" "$repo"
# The control: a decoy gnno put ahead on sys.path must make the check fail.
mkdir -p "$work/decoy/gnno"
touch "$work/decoy/gnno/__init__.py" "$work/decoy/gnno/_gnno.py"
control=$(PYTHONPATH=$work/decoy "$venv_py" -c "$check_import" "$repo" 2>&1) && control_rc=0 || control_rc=$?
if [ "$control_rc" -eq 0 ] || ! grep -q "came from $work/decoy/gnno" <<<"$control"; then
  echo "wheel: the import check did not notice a decoy gnno ahead on sys.path:" >&2
  echo "$control" >&2
  exit 1
fi
echo "control, a decoy gnno on PYTHONPATH: ${control##*$'\n'}"

stage "README quick start, from $outside"
cp "$repo/README.md" "$repo/.ci/readme_quickstart.py" "$outside/"
"$venv_py" -I readme_quickstart.py README.md --epochs 20

stage "gnno train --epochs 1"
gnno_cmd=$(command -v gnno)
[ "$gnno_cmd" = "$work/venv/bin/gnno" ] || { echo "wheel: gnno is $gnno_cmd" >&2; exit 1; }
gnno train --epochs 1 --no-progress --out runs/a
[ -s runs/a/metrics.json ] || { echo "wheel: gnno train wrote no metrics.json" >&2; exit 1; }

stage "SIMD paths forced by GNNO_SIMD"
# Runs a kernel under every path this CPU supports, each forced with
# GNNO_SIMD, and compares it with the path chosen without it. Skipped (with a
# message) while gnno.kernels has no simd_path().
if ! "$venv_py" -I -c 'import gnno.kernels as k; k.simd_path; k.simd_paths' 2>/dev/null; then
  echo "SKIPPED: gnno.kernels has no simd_path()/simd_paths() yet; GNNO_SIMD not checked"
else
  simd_check='
import sys
import numpy as np
import gnno.kernels as k
want = sys.argv[1]
path = k.simd_path()
label = want if want else "(unset)"
print(f"GNNO_SIMD={label}: simd_path() = {path!r}, supported: {k.simd_paths()}")
if want and path != want:
    sys.exit(f"wheel: GNNO_SIMD={want} was not honoured: simd_path() = {path!r}")
rng = np.random.default_rng(0)
indptr = np.array([0, 40, 40, 137, 1137], dtype=np.int64)
pos = rng.normal(size=1137).astype(np.float32)
cand = rng.normal(size=(4, 67)).astype(np.float32)
np.save(sys.argv[2], k.sigmoid_expectation(indptr, pos, cand))
'
  "$venv_py" -I -c "$simd_check" "" "$work/simd-default.npy"
  read -ra paths <<<"$("$venv_py" -I -c 'import gnno.kernels as k; print(*k.simd_paths())')"
  [[ " ${paths[*]} " == *" generic "* ]] || { echo "wheel: simd_paths() lacks generic" >&2; exit 1; }
  for p in "${paths[@]}"; do
    GNNO_SIMD=$p "$venv_py" -I -c "$simd_check" "$p" "$work/simd-$p.npy"
    "$venv_py" -I -c '
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True)
print(f"GNNO_SIMD={sys.argv[3]}: sigmoid_expectation agrees with the default path")
' "$work/simd-default.npy" "$work/simd-$p.npy" "$p"
  done
fi

stage "done: $name"
