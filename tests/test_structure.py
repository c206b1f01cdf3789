"""Project-wide rules that are easy to break by accident: import direction, no pickle, no global RNG."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ["lm", "views", "ui"]


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


# -- the layers (docs/architecture.md) ---------------------------------------------------------------------
# Each part of `lm` may import only parts of a lower rank, or modules of its own part. Parts of one rank
# (inspect, train) are siblings and may not import each other. Imports inside functions count too.
LAYERS = {
    "lm.i18n": -1,  # below everything: the errors' messages are translated through it
    "lm.errors": 0,
    "lm.device": 1, "lm.data": 1,
    "lm.models": 2,
    "lm.store": 3,
    "lm.run": 4,
    "lm.inspect": 5, "lm.train": 5,
    "lm.viz": 6,
    "lm.app": 7,
    "lm.cli": 8, "lm.__main__": 9,
}
MAX_LINES = 450
MAX_LOOSE_MODULES = 6  # modules directly in lm/: __init__, __main__, i18n, errors, device, cli


def _part(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _lm_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported lm module, inside a function) for every import of an lm module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {id(inner) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for inner in ast.walk(func)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "lm" or name.startswith("lm."):
                found.append((node.lineno, name, id(node) in in_function))
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_lm_imports_run_one_way_only():
    bad = []
    for path in _python_files("lm"):
        here = _module_name(path)
        if here == "lm":
            continue
        rank = LAYERS[_part(here)]
        for line, name, _ in _lm_imports(path):
            there = _part(name)
            if there == "lm" or there == _part(here):
                continue
            if LAYERS[there] >= rank:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {_part(here)} (rank {rank}) imports {name} "
                           f"(rank {LAYERS[there]})")
    assert bad == []


def test_lm_has_no_import_cycles():
    graph: dict[str, set[str]] = {}
    modules = {_module_name(p): p for p in _python_files("lm")}
    for here, path in modules.items():
        targets = set()
        for _, name, _ in _lm_imports(path):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != here:
                targets.add(name)
        graph[here] = targets
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_function_level_imports_say_why():
    """An import inside a function is allowed where it keeps start-up cheap; the line before it (or the
    import line itself) says so in a comment."""
    bad = []
    for path in _python_files("lm"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, name, inside in _lm_imports(path):
            if inside and "#" not in lines[line - 1] and not lines[line - 2].strip().startswith("#"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert bad == []


def test_no_long_files_and_few_loose_modules():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in _python_files(*CODE_DIRS, "app")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []
    loose = sorted(p.name for p in (ROOT / "lm").glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, loose
    assert all(_part(_module_name(p)) in LAYERS or _module_name(p) == "lm" for p in _python_files("lm"))
