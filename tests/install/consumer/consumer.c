/* Built against the installed nccl.h; prints the version it runs with. */
#include <stdio.h>

#include "nccl.h"

int main(void) {
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess || version != NCCL_VERSION_CODE) {
    fprintf(stderr, "unexpected version %d\n", version);
    return 1;
  }
  printf("consumer runs with NCCL API version %d\n", version);
  return 0;
}
