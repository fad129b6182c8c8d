"""Wire formats. Each dialect is pure encode/decode, used inbound (clients), outbound
(providers) and by the simulators. Nothing outside this package knows a wire field name."""
