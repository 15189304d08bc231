// Rank 0's weights to every rank: the parameters and buffers (BatchNorm statistics) of a module,
// in module order. What a rank that did not read a file itself needs to hold what rank 0 holds.
#pragma once
#include "layers/module.h"
#include "train/dist/communicator.h"

namespace sm {

// Every rank calls it with a module of the same architecture (checked: the byte counts must
// agree, else the ranks would exchange garbage). CPU tensors, or GPU ones through the host.
void module_broadcast(Communicator& comm, Module& module);

}  // namespace sm
