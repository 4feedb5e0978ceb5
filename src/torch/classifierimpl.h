#pragma once

// Classifier's state, shared by the files of ifs_torch that work on a loaded classifier
// (classifier.cpp, gradcam.cpp). Include only from ifs_torch sources.

#include "torch/export/exportkit.h"
#include "torch/torchmodels.h"
#include "training/evaluation.h"
#include "transforms/transforms.h"

#include <QString>
#include <QStringList>

#include <memory>
#include <optional>

namespace ifs {

struct Classifier::Impl
{
    std::shared_ptr<tm::Net> net;
    QString arch;
    QStringList classes;
    QString valSource;
    CompiledPipeline val;
    torch::Device device{torch::kCPU};
    QString deviceName;
    QStringList notes;
    std::optional<torch::ScalarType> amp; ///< autocast's type; none: float32
    tm::ForwardFn exported; ///< an exported model's forward pass (instead of net)
};

/// The state of a loaded classifier, for ifs_torch's other files.
struct ClassifierInternals
{
    static Classifier::Impl &of(Classifier &classifier) { return *classifier.d; }
};

} // namespace ifs
