// socket: connections over TCP, between ranks on any hosts (and between ranks
// of one host when NCCL_SHM_DISABLE=1).
//
// Each end has a local FIFO (heap memory, faulted in at setup), so the
// primitives see the usual shape; the transport's proxy threads (see
// socket_proxy.h) stream published slots from the sender's FIFO over
// NCCL_SOCKET_NTHREADS x NCCL_NSOCKS_PERTHREAD sockets (at most 64) into the
// receiver's FIFO.
//
// Setup: setupRecv allocates the FIFO and, once per interface, a listening
// socket on the interface that reaches the peer (the one whose subnet holds
// the peer's bootstrap address); its ConnectInfo holds that address, a
// connection id and the socket count. connectSend connects the sockets and
// sends on each a hello {bootstrap magic, connection id, socket index,
// sender rank}. connectRecv accepts until every socket of its connection id
// has arrived; hellos for other ids are parked for their own connectRecv,
// and strangers (wrong magic, silent, garbage) are dropped. Every wait ends
// by the peer's timeout or the abort flag.
//
// connectSend never waits for the peer to accept: the kernel completes the
// TCP handshake in the listener's backlog and a hello fits any socket
// buffer. So a runtime that runs every connectSend before its connectRecvs
// (as runtime/connect.cc does) cannot deadlock.
//
// One transport belongs to one communicator; it owns the listeners, the
// parked sockets and the proxy threads. A connection end may outlive it:
// its waits then end in an error.
#pragma once

#include <memory>

#include "bootstrap/socket_address.h"
#include "transport/transport.h"

namespace chorus {

// Reads NCCL_SOCKET_NTHREADS and NCCL_NSOCKS_PERTHREAD now.
std::unique_ptr<Transport> makeSocketTransport();

// The listening address a receive end's ConnectInfo names (for tests and
// diagnostics).
SocketAddress socketListenAddress(const ConnectInfo& recvInfo);

}  // namespace chorus
