// TrainConfig::validate() lives with the models it checks the architecture against: the
// registry of src/torch/models/ (ifs_torch), so that ifs_core never calls into ifs_torch.
#include "training/models.h"
#include "training/pretrained.h"
#include "training/training.h"

#include <QFileInfo>

#include <cmath>

namespace ifs {

Status TrainConfig::validate() const
{
    auto fail = [](const QString &message) {
        return Status(Error{message});
    };
    if (dataRoot.isEmpty())
        return fail(QStringLiteral("no dataset: choose an ImageFolder root (--data ROOT)"));
    if (!QFileInfo(dataRoot).isDir())
        return fail(QStringLiteral("the dataset folder “%1” does not exist").arg(dataRoot));
    if (!valRoot.isEmpty() && !QFileInfo(valRoot).isDir())
        return fail(QStringLiteral("the validation folder “%1” does not exist").arg(valRoot));
    if (!(valSplit >= 0.0 && valSplit < 1.0))
        return fail(QStringLiteral("the validation split must be at least 0 and below 1, not %1")
                        .arg(valSplit));
    if (!findModelArch(arch))
        return fail(unknownModelMessage(arch));
    if (batchSize < 1)
        return fail(QStringLiteral("the batch size must be at least 1, not %1").arg(batchSize));
    if (epochs < 1)
        return fail(QStringLiteral("the number of epochs must be at least 1, not %1").arg(epochs));
    if (!(lr > 0.0) || !std::isfinite(lr))
        return fail(QStringLiteral("the learning rate must be a positive number, not %1").arg(lr));
    if (momentum < 0.0 || momentum >= 1.0 + 1e-12)
        return fail(QStringLiteral("momentum must be between 0 and 1, not %1").arg(momentum));
    if (nesterov && (optimizer != OptimizerKind::SGD || momentum <= 0.0))
        return fail(QStringLiteral("Nesterov momentum needs SGD with a momentum above 0"));
    if (weightDecay < 0.0)
        return fail(QStringLiteral("weight decay cannot be negative (%1)").arg(weightDecay));
    if (!(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0))
        return fail(
            QStringLiteral("Adam's betas must be in [0, 1), not (%1, %2)").arg(beta1).arg(beta2));
    if (!(labelSmoothing >= 0.0 && labelSmoothing <= 1.0))
        return fail(
            QStringLiteral("label smoothing must be between 0 and 1, not %1").arg(labelSmoothing));
    if (gradClipNorm < 0.0)
        return fail(
            QStringLiteral("the gradient clipping norm cannot be negative (%1)").arg(gradClipNorm));
    if (warmupEpochs < 0.0)
        return fail(QStringLiteral("warm-up epochs cannot be negative (%1)").arg(warmupEpochs));
    if (schedule == ScheduleKind::Step && (stepEpochs < 1 || !(stepGamma > 0.0)))
        return fail(QStringLiteral("the step schedule needs step epochs ≥ 1 and a gamma above 0"));
    if (outDir.isEmpty())
        return fail(QStringLiteral("no run folder: choose where checkpoints go (--out RUNDIR)"));
    if (!resumePath.isEmpty() && !QFileInfo(resumePath).isFile())
        return fail(
            QStringLiteral("the checkpoint to resume from, “%1”, does not exist").arg(resumePath));
    if (!weightsPath.isEmpty() && !QFileInfo(weightsPath).isFile())
        return fail(QStringLiteral("the weights file “%1” does not exist").arg(weightsPath));
    if (!pretrained.isEmpty()) {
        if (!weightsPath.isEmpty())
            return fail(QStringLiteral("start from a weights file or from pretrained weights, not "
                                       "both"));
        if (auto found = findPretrainedWeights(arch, pretrained); !found)
            return fail(found.errorMessage());
    }
    if (amp == AmpMode::Float16 && device == u"cpu")
        return fail(QStringLiteral("float16 mixed precision is for CUDA devices; on the CPU "
                                   "choose bf16, auto or off"));
    if (finetune == FinetuneMode::HeadThenFull && unfreezeEpoch < 1)
        return fail(QStringLiteral("head-then-full fine-tuning needs an unfreeze epoch of at "
                                   "least 1, not %1")
                        .arg(unfreezeEpoch));
    if (!(backboneLrFactor > 0.0) || !std::isfinite(backboneLrFactor))
        return fail(QStringLiteral("the backbone's learning-rate factor must be a positive "
                                   "number, not %1 (freeze the backbone with head fine-tuning)")
                        .arg(backboneLrFactor));
    if (earlyStopping != EarlyStopMetric::Off && patience < 1)
        return fail(QStringLiteral("early stopping needs a patience of at least 1 epoch, not %1")
                        .arg(patience));
    if (!(minDelta >= 0.0) || !std::isfinite(minDelta))
        return fail(QStringLiteral("early stopping's minimum improvement (min delta) must be 0 "
                                   "or more, not %1")
                        .arg(minDelta));
    return success();
}

} // namespace ifs
