"""Project-wide rules that are easy to break by accident: import direction, no pickle, no global RNG."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ["lm", "pages", "ui"]


def _python_files(*dirs):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))
    if not dirs or "app" in dirs:
        yield ROOT / "app.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_lm_never_imports_streamlit_statically():
    offenders = [str(p.relative_to(ROOT)) for p in _python_files("lm") if "streamlit" in _imports(p)]
    assert offenders == []


def test_importing_every_lm_module_loads_no_streamlit():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _python_files("lm")
               if p.name != "__main__.py"]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_no_pickle_loading_anywhere():
    bad = []
    for path in _python_files(*CODE_DIRS, "app"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] in ("pickle", "cPickle", "dill", "joblib") for m in mods):
                    bad.append(f"{path.name}: imports pickle-like module")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = getattr(node.func.value, "id", "")
                if (owner, node.func.attr) in {("torch", "load"), ("pickle", "load"), ("pickle", "loads"),
                                               ("np", "load"), ("numpy", "load")}:
                    if owner in ("np", "numpy") and any(k.arg == "allow_pickle" and getattr(k.value, "value", None) is False
                                                        for k in node.keywords):
                        continue
                    bad.append(f"{path.name}:{node.lineno}: {owner}.{node.func.attr}")
    assert bad == []


def test_no_global_rng_seeding():
    """Randomness comes from per-call generators. The one allowed exception is training's dropout (fused
    kernels such as nn.LSTM's take no generator): it seeds the global RNG only inside `fork_rng`, which
    restores the previous state afterwards, so nobody else ever observes the seed."""
    bad = []
    for path in _python_files(*CODE_DIRS, "app"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            for needle in ("torch.manual_seed", "np.random.seed(", "numpy.random.seed(", "random.seed(",
                           "torch.random.manual_seed"):
                if needle in line and not line.lstrip().startswith(("#", "`")):
                    inside_fork = number > 0 and "fork_rng(" in lines[number - 1]
                    if not (needle == "torch.manual_seed" and inside_fork):
                        bad.append(f"{path.name}:{number + 1}: {line.strip()}")
    assert bad == []


def test_every_module_starts_with_a_docstring():
    missing = [str(p.relative_to(ROOT)) for p in _python_files(*CODE_DIRS, "app")
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert missing == []
