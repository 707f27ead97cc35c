#include "bootstrap/wire.h"

#include "common/result.h"

namespace chorus {

ncclResult_t recvHeader(Socket& sock, uint64_t magic, uint32_t maxLength, WireHeader* header,
                        Deadline deadline, const std::atomic<bool>* abort) {
  CHORUS_CHECK(sock.recvAll(header, sizeof(*header), deadline, abort));
  if (header->magic != magic)
    CHORUS_FAIL(ncclSystemError,
                "bootstrap connection from %s presented the wrong magic (another job, or a stale "
                "id?); dropped",
                addressToString(sock.peer()).c_str());
  if (header->length > maxLength)
    CHORUS_FAIL(ncclSystemError, "bootstrap message from %s announces %u bytes (limit %u); dropped",
                addressToString(sock.peer()).c_str(), header->length, maxLength);
  return ncclSuccess;
}

}  // namespace chorus
