// Framing of bootstrap messages. Every message starts with a header carrying
// the id's magic; a receiver drops a connection whose magic is wrong or whose
// announced length exceeds what it expects, before reading any payload.
#pragma once

#include <cstdint>

#include "bootstrap/socket.h"
#include "bootstrap/socket_address.h"

namespace chorus {

enum class WireType : uint32_t { Register = 1, RootReply = 2, Ring = 3, PeerMessage = 4 };

struct WireHeader {
  uint64_t magic;
  uint32_t type;
  uint32_t length;  // payload bytes that follow
};

// A rank tells the root of its range who it is and where it listens.
struct RegisterPayload {
  int32_t rank;
  int32_t nranks;
  int32_t nroots;
  int32_t rootIndex;
  SocketAddress listen;
  // A hash of every id the rank was given, in order: ranks of one
  // ncclCommInitRankScalable must have the same ones.
  uint64_t idsHash;
};

// The root answers each rank with its ring successor's address, or an error.
struct RootReplyPayload {
  int32_t ok;
  int32_t nextRank;
  SocketAddress next;
  char message[480];
};

// Opens a ring or point-to-point connection.
struct PeerHello {
  int32_t rank;
  int32_t tag;
};

// Largest message one rank may send another through bootstrap send/recv.
constexpr uint32_t kMaxPeerMessage = 64u << 20;

inline ncclResult_t sendMessage(Socket& sock, uint64_t magic, WireType type, const void* payload,
                                uint32_t length, Deadline deadline,
                                const std::atomic<bool>* abort) {
  WireHeader header{magic, static_cast<uint32_t>(type), length};
  ncclResult_t r = sock.sendAll(&header, sizeof(header), deadline, abort);
  if (r == ncclSuccess && length > 0) r = sock.sendAll(payload, length, deadline, abort);
  return r;
}

// Reads a header and checks magic and length bound; ncclSystemError with a
// message otherwise (the caller drops the connection).
ncclResult_t recvHeader(Socket& sock, uint64_t magic, uint32_t maxLength, WireHeader* header,
                        Deadline deadline, const std::atomic<bool>* abort);

}  // namespace chorus
