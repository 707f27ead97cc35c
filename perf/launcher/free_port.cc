#include "free_port.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace chorus {
namespace launcher {
namespace {

int portOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
}

}  // namespace

bool findFreePort(const std::string& addr, int* port, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(addr.c_str(), "0", &hints, &found);
  if (rc != 0) {
    *error = "cannot resolve MASTER_ADDR '" + addr + "': " + gai_strerror(rc);
    return false;
  }
  std::string lastError = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      lastError = std::string("socket: ") + strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
      close(fd);
      freeaddrinfo(found);
      *port = portOf(bound);
      return true;
    }
    lastError = std::string("bind: ") + strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  *error = "cannot find a free port on '" + addr + "' (" + lastError +
           "); is it an address of this machine? --port sets the port";
  return false;
}

}  // namespace launcher
}  // namespace chorus
