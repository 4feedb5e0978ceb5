// Precompiled header for the files that use libtorch: parsing <torch/torch.h> costs tens of
// seconds per file, so it is parsed once per target.
#pragma once
#include <torch/torch.h>
