#pragma once

// The learning-rate finder, as fastai v2's Learner.lr_find(): a mock training whose rate grows
// exponentially from startLr to endLr over numIt optimizer steps (SchedExp), recording the loss
// smoothed as fastai's Recorder does (AvgSmoothLoss: an exponential moving average with `beta`,
// debiased), stopping when the smoothed loss passes 4 × its best (stop_div) or is not a number,
// and suggesting rates from the curve (fastai's `steep`, `minimum` and `valley`). It runs on the
// same TrainConfig, data, model and training step as Trainer; the model's weights, BatchNorm
// statistics, the optimizer's state and torch's generator are restored afterwards. Torch-free
// header; findLearningRate() is in ifs_torch (src/torch/training.cpp, the curve in
// src/torch/lrfinder.cpp).

#include "base/result.h"
#include "training/training.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>
#include <memory>

namespace ifs {

/// fastai's lr_find() arguments (same defaults).
struct LrFindOptions
{
    double startLr = 1e-7;
    double endLr = 10.0;
    int numIt = 100; ///< steps of the ramp; fewer than 6 count as 6 (fastai's LRFinder)
    bool stopDiv = true; ///< stop once the smoothed loss exceeds 4 × its best
    double beta = 0.98; ///< the smoothing (fastai's Recorder)
    /// Writes the model's state dict, as the finder leaves it (restored), to this .pth: tests
    /// compare it with the weights it started from. Empty: nothing is written.
    QString saveModelTo;

    /// Checks the values: "the start rate must be above 0", ...
    Status validate() const;
};

/// Why the ramp ended.
enum class LrFindStop {
    Completed, ///< numIt steps
    Diverged, ///< the smoothed loss exceeded 4 × its best (stop_div)
    NotFinite, ///< the loss became NaN (fastai runs on with a NaN curve; see LrFinderCurve)
};
/// "completed", "diverged", "not-finite".
QString lrFindStopName(LrFindStop stop);

/// A suggested rate, with the point of the curve that fastai's plot marks for it.
struct LrSuggestion
{
    QString name; ///< "steep", "minimum", "valley" (fastai's suggestion functions)
    double lr = 0.0; ///< the suggestion (for "minimum": the rate of the minimum / 10)
    double pointLr = 0.0; ///< the curve's point that it comes from
    double pointLoss = 0.0; ///< its smoothed loss
};

/// The ramp's records, step by step (index 0 is the first step), and what fastai suggests.
class LrFinderCurve
{
public:
    explicit LrFinderCurve(const LrFindOptions &options);
    ~LrFinderCurve();
    LrFinderCurve(LrFinderCurve &&) noexcept;
    LrFinderCurve &operator=(LrFinderCurve &&) noexcept;

    /// Steps of the ramp: numIt, at least 6.
    int iterations() const;
    /// The rate of step `iteration` (0-based): start × (end / start) ^ (iteration / numIt), in
    /// double precision as Python computes it.
    double rate(int iteration) const;
    /// Records a step's loss at `lr`; returns whether the ramp goes on (false: stop() says why,
    /// or the last step was recorded). The smoothing is fastai's, in float32 as its tensors are.
    bool record(double lr, float loss);
    /// Why the ramp ended; Completed while it goes on.
    LrFindStop stop() const;

    const QList<double> &lrs() const;
    const QList<double> &losses() const; ///< the raw loss of each step
    const QList<double> &smoothed() const; ///< fastai's Recorder.losses (float32 values)

    /// fastai's suggestions on the recorded curve, as lr_find() computes them: the smoothed
    /// losses from step numIt // 10 to the fifth last (skip_end), up to the first NaN, as float32
    /// tensors; "steep", "minimum" and "valley" in this order. Empty when too few points remain.
    QList<LrSuggestion> suggestions() const;

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

/// A step of the ramp, as it is recorded.
struct LrFindProgress
{
    int iteration = 0; ///< 1-based
    int iterations = 0;
    double lr = 0.0;
    double loss = 0.0;
    double smoothed = 0.0;
};

struct LrFindResult
{
    QList<double> lrs;
    QList<double> losses; ///< raw
    QList<double> smoothed;
    QList<LrSuggestion> suggestions; ///< LrFinderCurve::suggestions()
    LrFindStop stop = LrFindStop::Completed;
    int iterations = 0; ///< steps asked for (numIt, at least 6)
    QString stopMessage; ///< a sentence: "diverged at step 83 (lr 2.1): the smoothed loss ..."
    TrainStart start; ///< the device, runtime, data and notes, as a training run reports them
    /// The ramp's batches, step by step: the files of each, in batch order (the training set's
    /// samples); the replay of the ramp (tests/tools/lrfind_oracle.py).
    QList<QStringList> batches;
    /// The suggestion named `name`; null when there is none.
    const LrSuggestion *suggestion(const QString &name) const;
};

struct LrFindCallbacks
{
    std::function<void(const QString &)> status; ///< "Scanning the dataset…"
    std::function<void(const LrFindProgress &)> progress;
};

/// Runs the finder on `config`'s data and model, prepared as Trainer prepares them (seed, start
/// weights or pretrained, fine-tuning mode, device, AMP, memory format, threads), with its
/// optimizer and training step; the schedule, epochs, validation, run folder and resume
/// settings play no part and nothing is written (but options.saveModelTo). The batches come
/// from the training loader's epochs in order (seeded as in training). Polls `cancel` between
/// steps: an ErrorCode::Cancelled error then.
Result<LrFindResult> findLearningRate(const TrainConfig &config, const LrFindOptions &options,
                                      const LrFindCallbacks &callbacks = {},
                                      const std::atomic_bool *cancel = nullptr);

/// JSON of a result: {"lrs", "losses", "smoothed", "suggestions": {name: {"lr", "point_lr",
/// "point_loss"}}, "stop", "iterations", "message"} (the CLI's --json).
QJsonObject lrFindResultJson(const LrFindResult &result);

} // namespace ifs
