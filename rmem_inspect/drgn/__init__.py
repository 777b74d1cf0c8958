# SPDX-License-Identifier: GPL-2.0-or-later
"""
drgn
----

rmem_inspect inside drgn: :mod:`.script` is the report as a drgn script
(``drgn -c VMCORE -s VMLINUX script.py``), :mod:`.plugin` adds the ``rmem``
command to drgn sessions (the ``drgn.plugins`` entry point).
"""
