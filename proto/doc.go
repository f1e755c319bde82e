// Package proto is Brain's contract: the WebSocket messages clients and gateways exchange, the job
// and status records gateways and workers exchange through NATS JetStream, the subject, stream and
// bucket names, the namespace naming rule, the error codes a client may see and the WebSocket close
// codes a gateway may send.
//
// Nothing here talks to the network; package layout (in this module) creates and checks the
// JetStream streams, consumer and key-value buckets that these names describe.
package proto
