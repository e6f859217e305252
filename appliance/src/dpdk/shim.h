/* What bindgen cannot reach: a thread-local errno and bit-fields inside anonymous unions. */
#ifndef UDPLB_DPDK_SHIM_H
#define UDPLB_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;

/* The calling thread's rte_errno (a per-lcore thread-local in DPDK). */
int udplb_rte_errno(void);

/* Sets the TX offload request of an mbuf: ol_flags plus the l2_len/l3_len bit-fields the
 * PMD needs to find the headers it checksums. */
void udplb_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len,
			       uint16_t l3_len);

/* Reads back l2_len and l3_len (for tests and diagnostics). */
uint16_t udplb_mbuf_l2_len(const struct rte_mbuf *m);
uint16_t udplb_mbuf_l3_len(const struct rte_mbuf *m);

#endif
