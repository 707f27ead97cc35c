// Chorus's nccl.h compiled as C++ (see header_check_body.h).
#include "header_check_body.h"
