//! Slow path: smoltcp host stack for ARP, ND and ICMP.
