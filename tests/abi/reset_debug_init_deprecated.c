/* Compiled by a test that expects a deprecation warning for this call, as
 * NVIDIA's header gives one. */
#include "nccl.h"

void chorusCallsResetDebugInit(void);
void chorusCallsResetDebugInit(void) { ncclResetDebugInit(); }
