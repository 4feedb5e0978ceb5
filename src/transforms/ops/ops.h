#pragma once

// The list of transforms: one line per transform, naming the function in ops/<name>.cpp that
// returns its TransformDefinition. The order is the signature table's (knownTransforms()), which
// is also the order within each section of the Add Step menu. An X-macro, so that one line both
// declares the function and registers it (transformregistry.cpp expands the list).

#include "transforms/transformregistry.h"

#define IFS_TRANSFORM_OPS(X)                                                                       \
    X(resize)                                                                                      \
    X(centerCrop)                                                                                  \
    X(randomCrop)                                                                                  \
    X(randomResizedCrop)                                                                           \
    X(randomHorizontalFlip)                                                                        \
    X(randomVerticalFlip)                                                                          \
    X(randomRotation)                                                                              \
    X(randomAffine)                                                                                \
    X(randomPerspective)                                                                           \
    X(colorJitter)                                                                                 \
    X(grayscale)                                                                                   \
    X(randomGrayscale)                                                                             \
    X(gaussianBlur)                                                                                \
    X(randomInvert)                                                                                \
    X(randomPosterize)                                                                             \
    X(randomSolarize)                                                                              \
    X(randomAdjustSharpness)                                                                       \
    X(randomAutocontrast)                                                                          \
    X(randomEqualize)                                                                              \
    X(pad)                                                                                         \
    X(toTensor)                                                                                    \
    X(normalize)                                                                                   \
    X(randomErasing)                                                                               \
    X(randomApply)                                                                                 \
    X(randomChoice)                                                                                \
    X(randomOrder)                                                                                 \
    X(autoAugment)                                                                                 \
    X(randAugment)                                                                                 \
    X(trivialAugmentWide)                                                                          \
    X(augMix)                                                                                      \
    X(elasticTransform)                                                                            \
    X(fiveCrop)                                                                                    \
    X(tenCrop)                                                                                     \
    X(pilToTensor)                                                                                 \
    X(convertImageDtype)                                                                           \
    X(toPilImage)                                                                                  \
    X(linearTransformation)                                                                        \
    X(lambdaTransform)

namespace ifs::ops {

#define IFS_DECLARE_TRANSFORM_OP(function) const TransformDefinition &function();
IFS_TRANSFORM_OPS(IFS_DECLARE_TRANSFORM_OP)
#undef IFS_DECLARE_TRANSFORM_OP

} // namespace ifs::ops
