# SPDX-License-Identifier: GPL-2.0-or-later
"""
trace
-----

``rmem-inspect trace``: live eBPF tracing, with bcc, of the code that hands
reserved-memory carveouts to devices at run time, so a missing carveout shows
up as the call that failed:

- ``of_reserved_mem_device_init_by_idx()`` (kprobe + kretprobe): device, the
  consumer's DT node, the ``memory-region`` index, the region it resolved to,
  the return value;
- ``of_reserved_mem_lookup()``: the region's DT node, the ``reserved_mem``
  entry returned, or NULL: a carveout the kernel does not have;
- the carveout's ``device_init`` op (``rmem_dma_device_init``,
  ``rmem_cma_device_init``, ``rmem_swiotlb_device_init``);
- CMA: the ``cma:cma_alloc_start``, ``cma:cma_alloc_finish`` and
  ``cma:cma_release`` tracepoints (area, pages, result), with the device of the
  ``dma_alloc_attrs()``/``dma_free_attrs()`` call they happen in;
- coherent pools: ``dma_alloc_from_dev_coherent()``, or the ``dma:dma_alloc``
  tracepoint where only that exists.

Each probe is feature-probed on the running kernel with bcc's own helpers
(``BPF.get_kprobe_functions``, ``BPF.tracepoint_exists``) and skipped, with a
note, when absent; tracepoint fields that changed between kernels (the
``errorno`` of ``cma_alloc_finish``) are read from the tracepoint's format file.
With debug info (``--vmlinux`` or the build-id search of ``report``) or a
``--snapshot``, failures are correlated with the boot verdicts of
:func:`rmem_inspect.checks.run`. Decoding, filters, the summary and the
correlation are in :mod:`rmem_inspect.trace.events` (no bcc needed).

The package, one module per job: :mod:`~rmem_inspect.trace.probes` (what to trace
and which of it the running kernel offers), :mod:`~rmem_inspect.trace.bpf_program`
(the BPF C program and its compiler flags), :mod:`~rmem_inspect.trace.events` (the
event layout, decoding, filters, summary, correlation), :mod:`~rmem_inspect.trace.run`
(compile, attach, the event loop: :func:`~rmem_inspect.trace.run.run_trace`) and
``__main__`` (``python3 -m rmem_inspect.trace ARGS``). The options are in
:mod:`rmem_inspect.commands.trace`.

bcc comes from the distribution (Debian: ``apt install python3-bpfcc``); PyPI's
``bcc`` is an unrelated package. bcc is imported only in
:func:`~rmem_inspect.trace.run.run_trace`; importing this package imports nothing.
"""
