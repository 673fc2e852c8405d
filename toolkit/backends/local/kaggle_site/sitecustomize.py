"""Loaded by every Python process of a locally run kernel (the local backend puts this folder on
PYTHONPATH), so the kernel meets Kaggle's limits here first instead of after a GPU session started:

- Packages: the kernel's environment holds only Kaggle's package set (see toolkit/backends/local/session.py).
- Python: Kaggle's image runs Python 3.12 (Kaggle/docker-python's Dockerfile.tmpl installs into python3.12),
  whose standard library no longer has `imp`, `asynchat`, `asyncore` and `smtpd` (PEP 594, "What's new in Python
  3.12"), nor `distutils` (PEP 632), which setuptools' shim still provides where setuptools is installed, as in
  Kaggle's image. Importing one fails here as it does there: `ModuleNotFoundError: No module named 'imp'`.
- Inputs: Kaggle mounts /kaggle/input read-only, so writing under the paths in TOOLKIT_READONLY
  fails with `OSError: [Errno 30] Read-only file system`, through an audit hook (PEP 578) because
  the runner is often root, for whom file permissions would not stop anything.
- Internet: with TOOLKIT_NO_INTERNET=1 (a kernel pushed with enable_internet false, and every code
  competition rerun) names do not resolve and connections fail, as on Kaggle with the internet off
  (`[Errno -3] Temporary failure in name resolution`, as pip reports there: RDFLib/rdflib#963), except
  to this machine itself (loopback), which the Jupyter kernel and DataLoader workers need. It is an
  audit hook too, so it reaches every Python library but not other programs the kernel starts.

It must not import the toolkit: the toolkit is not in Kaggle's image either.
"""

import errno
import ipaddress
import os
import socket
import sys
from importlib.abc import MetaPathFinder

# Standard-library modules Python 3.12 removed (Kaggle's Python), each refused by name.
REMOVED_IN_312 = ("imp", "asynchat", "asyncore", "smtpd", "distutils")


class Python312Stdlib(MetaPathFinder):
    """Refuses the modules Python 3.12 removed. Placed after setuptools' distutils shim, which still answers
    `import distutils` first where it is enabled, as it does in Kaggle's image."""

    def find_spec(self, fullname, path=None, target=None):
        if path is None and fullname in REMOVED_IN_312:  # submodules come from their parent's own folder
            raise ModuleNotFoundError(f"No module named '{fullname}'", name=fullname)
        return None


def _stdlib_as_312():
    shims = [i for i, finder in enumerate(sys.meta_path) if type(finder).__module__ == "_distutils_hack"]
    sys.meta_path.insert(shims[-1] + 1 if shims else 0, Python312Stdlib())


def _read_only_hook(roots):
    roots = tuple(os.path.join(r, "") for r in roots)
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    path_events = {"os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.symlink", "os.link", "os.chmod",
                   "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}

    def refuse(path):
        if isinstance(path, (str, bytes, os.PathLike)):
            full = os.path.abspath(os.fsdecode(path))
            if os.path.join(full, "").startswith(roots) or os.path.join(os.path.realpath(full), "").startswith(roots):
                raise OSError(errno.EROFS, "Read-only file system", full)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if (mode and any(c in mode for c in "wax+")) or (mode is None and flags & writes):
                refuse(path)
        elif event in path_events:
            targets = args[:2] if event in ("os.rename", "os.link", "shutil.copyfile", "shutil.move") else args[:1]
            for path in targets[1:] if event == "shutil.copyfile" else targets:
                refuse(path)

    return hook


def _address(host):
    """`host` (str or bytes) as an IP address, or None for a name."""
    host = os.fsdecode(host) if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def _loopback(address):
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _loopback_names(hosts="/etc/hosts"):
    """Names that resolve to this machine without DNS: localhost, its host name, /etc/hosts' loopback lines."""
    names = {"localhost", socket.gethostname().lower()}
    try:
        with open(hosts) as fh:
            for line in fh:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and _address(fields[0]) is not None and _loopback(_address(fields[0])):
                    names.update(f.lower() for f in fields[1:])
    except OSError:
        pass
    return names


def _local_host(host, names):
    """Whether `host` (a name or an address) is this machine."""
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard or loopback address
    address = _address(host)
    if address is None:
        name = (os.fsdecode(host) if isinstance(host, bytes) else str(host)).lower()
        return name in names or name.endswith(".localhost")
    return _loopback(address)


def _no_internet_hook():
    names = _loopback_names()

    def hook(event, args):
        # A numeric address needs no DNS, so it "resolves"; connecting to it is what fails below.
        if event == "socket.getaddrinfo" and not _local_host(args[0], names) and _address(args[0]) is None:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local_host(address[0], names):
                if _address(address[0]) is None:  # connect() resolves a name itself
                    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
                raise OSError(errno.ENETUNREACH, "Network is unreachable")

    return hook


def install():
    _stdlib_as_312()
    read_only = [p for p in os.environ.get("TOOLKIT_READONLY", "").split(os.pathsep) if p]
    if read_only:
        sys.addaudithook(_read_only_hook([os.path.realpath(p) for p in read_only]))
    if os.environ.get("TOOLKIT_NO_INTERNET") == "1":
        sys.addaudithook(_no_internet_hook())


install()
