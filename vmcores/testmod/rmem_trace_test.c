// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rmem_trace_test: a reserved-memory consumer for the trace tier of rmem_inspect.
 *
 * Binds to the factory scenarios' consumer nodes (compatible "rmem-inspect,test-*",
 * vmcores/scenarios.py), assigns every memory-region of the node with
 * of_reserved_mem_device_init_by_idx(), allocates and frees one coherent buffer
 * (from the device's coherent pool, its CMA area, or the default CMA area), then
 * releases the regions. Each step is logged with the "rmem-trace-test:" prefix, so
 * the test compares what bcc traced with what the kernel said it did.
 */
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/platform_device.h>

static unsigned int alloc_size = 256 * 1024;
module_param(alloc_size, uint, 0444);
MODULE_PARM_DESC(alloc_size, "bytes of the coherent allocation made by each device");

static int rmem_trace_test_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *np = dev->of_node;
	dma_addr_t handle;
	void *vaddr;
	int i, n, ret;

	n = of_count_phandle_with_args(np, "memory-region", NULL);
	for (i = 0; i < n; i++) {
		ret = of_reserved_mem_device_init_by_idx(dev, np, i);
		dev_info(dev, "rmem-trace-test: memory-region[%d] init %d\n", i, ret);
	}
	vaddr = dma_alloc_coherent(dev, alloc_size, &handle, GFP_KERNEL);
	dev_info(dev, "rmem-trace-test: dma_alloc_coherent %u %s\n", alloc_size,
		 vaddr ? "ok" : "NULL");
	if (vaddr)
		dma_free_coherent(dev, alloc_size, vaddr, handle);
	of_reserved_mem_device_release(dev);
	return 0;
}

static const struct of_device_id rmem_trace_test_of_match[] = {
	{ .compatible = "rmem-inspect,test-vpu" },
	{ .compatible = "rmem-inspect,test-dsp" },
	{ .compatible = "rmem-inspect,test-isp" },
	{ .compatible = "rmem-inspect,test-codec" },
	{ .compatible = "rmem-inspect,test-video" },
	{ .compatible = "rmem-inspect,test-camera" },
	{ }
};
MODULE_DEVICE_TABLE(of, rmem_trace_test_of_match);

static struct platform_driver rmem_trace_test_driver = {
	.probe = rmem_trace_test_probe,
	.driver = {
		.name = "rmem_trace_test",
		.of_match_table = rmem_trace_test_of_match,
	},
};
module_platform_driver(rmem_trace_test_driver);

MODULE_DESCRIPTION("reserved-memory consumer for rmem_inspect's trace tests");
MODULE_LICENSE("GPL");
