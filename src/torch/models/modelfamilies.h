#pragma once

// The list of model families: one line per file in src/torch/models/, naming its function that
// returns the architectures it defines. The order is the order of modelArchitectures() (the UI's
// model list and the CLI's help). An X-macro, so that one line both declares the function and
// registers it (src/torch/models.cpp expands the list).

#include "torch/models/modelkit.h"

#include <QList>

#define IFS_MODEL_FAMILIES(X)                                                                      \
    X(smallCnnModels)                                                                              \
    X(resnetModels)                                                                                \
    X(mobileNetV2Models)                                                                           \
    X(mobileNetV3Models)                                                                           \
    X(efficientNetModels)                                                                          \
    X(convNextModels)                                                                              \
    X(denseNetModels)

namespace ifs::tm {

#define IFS_DECLARE_MODEL_FAMILY(function) const QList<ModelDefinition> &function();
IFS_MODEL_FAMILIES(IFS_DECLARE_MODEL_FAMILY)
#undef IFS_DECLARE_MODEL_FAMILY

} // namespace ifs::tm
