"""Give the development venv the start-up hook that an editable install leaves out.

`pip install -e` does not install the wheel's sched_accel.pth; the tests that start real
interpreters need it, so `make` copies it into the venv's site-packages.
"""

import pathlib
import shutil
import sysconfig

source = pathlib.Path(__file__).resolve().parent.parent / "src" / "sched_accel.pth"
target = pathlib.Path(sysconfig.get_paths()["purelib"]) / "sched_accel.pth"
shutil.copyfile(source, target)
print(f"start-up hook installed for development: {target}")

# The editable install copies the boot module into site-packages, where it would shadow
# the source in src/ that we edit: remove the copy (src/ is on sys.path already).
for stale in ("_sched_accel_boot.py", "sched_accel.start"):
    copy = target.parent / stale
    if copy.exists():
        copy.unlink()
