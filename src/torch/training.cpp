// The training loop (libtorch). See training.h for what a run writes.

#include "training/training.h"

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointwriter.h"
#include "torch/runtime.h"
#include "torch/torchmodels.h"
#include "training/models.h"
#include "training/runrecords.h"
#include "training/trainingdata.h"
#include "transforms/torchrng.h"

#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>
#include <QSet>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <numbers>

namespace ifs {

using ckpt::Value;

// ------------------------------------------------------------------------------------------------
// Device

Result<std::pair<QString, QString>> resolveDevice(const QString &request)
{
    const QString r = request.trimmed().toLower();
    const bool built = at::hasCUDA();
    const int count = built && torch::cuda::is_available() ? int(torch::cuda::device_count()) : 0;
    const QString why = !built
        ? QStringLiteral("CUDA is not available in this libtorch build (CPU only)")
        : QStringLiteral("this libtorch has CUDA, but no GPU is visible (driver, "
                         "CUDA_VISIBLE_DEVICES?)");
    if (r.isEmpty() || r == u"auto") {
        if (count > 0)
            return std::pair{
                QStringLiteral("cuda:0"),
                QStringLiteral("CUDA is available (%1 GPU): using the first").arg(count)};
        return std::pair{QStringLiteral("cpu"), why};
    }
    if (r == u"cpu")
        return std::pair{QStringLiteral("cpu"), QStringLiteral("the CPU, as chosen")};
    if (r == u"cuda" || r.startsWith(u"cuda:")) {
        int index = 0;
        if (r.startsWith(u"cuda:")) {
            bool ok = false;
            index = r.mid(5).toInt(&ok);
            if (!ok || index < 0)
                return Error{QStringLiteral("“%1” is not a device: use auto, cpu, cuda or cuda:N")
                                 .arg(request)};
        }
        if (count == 0)
            return Error{
                QStringLiteral("cannot train on %1: %2. Choose the CPU (--device cpu) or auto")
                    .arg(request, why)};
        if (index >= count)
            return Error{
                QStringLiteral("cannot train on %1: this machine has %2 GPU(s), cuda:0 to cuda:%3")
                    .arg(request)
                    .arg(count)
                    .arg(count - 1)};
        return std::pair{QStringLiteral("cuda:%1").arg(index),
                         QStringLiteral("%1, as chosen").arg(request)};
    }
    return Error{
        QStringLiteral("“%1” is not a device: use auto, cpu, cuda or cuda:N").arg(request)};
}

namespace {

// ------------------------------------------------------------------------------------------------
// Learning-rate schedule (per optimizer step)

struct Schedule
{
    ScheduleKind kind = ScheduleKind::Cosine;
    double baseLr = 0.1;
    qint64 stepsPerEpoch = 1;
    qint64 totalSteps = 1;
    qint64 warmupSteps = 0;
    int stepEpochs = 30;
    double gamma = 0.1;

    /// OneCycleLR's two phases (pct_start 0.3, cosine annealing): from `start` to `peak` over
    /// the first 30% of the steps, then from `peak` to `end`.
    double oneCycle(qint64 s, double start, double peak, double end) const
    {
        auto cosine = [](double from, double to, double pct) {
            return to + (from - to) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
        };
        const double phaseEnd = 0.3 * double(totalSteps) - 1.0;
        if (double(s) <= phaseEnd)
            return cosine(start, peak, phaseEnd > 0 ? double(s) / phaseEnd : 1.0);
        const double span = double(totalSteps - 1) - phaseEnd;
        return cosine(peak, end, span > 0 ? std::min(1.0, (double(s) - phaseEnd) / span) : 1.0);
    }

    /// The momentum (SGD) or beta1 (Adam, AdamW) of step `s` when the schedule sets it:
    /// OneCycleLR's cycle_momentum, from 0.95 down to 0.85 while the rate rises, and back.
    std::optional<double> momentum(qint64 s) const
    {
        if (kind != ScheduleKind::OneCycle)
            return std::nullopt;
        return oneCycle(s, 0.95, 0.85, 0.95);
    }

    /// The learning rate of the optimizer step with 0-based index `s`.
    double lr(qint64 s) const
    {
        using std::numbers::pi;
        if (kind == ScheduleKind::OneCycle) {
            // torch.optim.lr_scheduler.OneCycleLR's defaults: div_factor 25, final_div_factor 1e4.
            const double initial = baseLr / 25.0;
            return oneCycle(s, initial, baseLr, initial / 1e4);
        }
        double value = baseLr;
        switch (kind) {
        case ScheduleKind::Constant:
        case ScheduleKind::OneCycle:
            break;
        case ScheduleKind::Step:
            value = baseLr
                * std::pow(gamma, double((s / std::max<qint64>(1, stepsPerEpoch)) / stepEpochs));
            break;
        case ScheduleKind::Cosine: {
            const qint64 span = std::max<qint64>(1, totalSteps - warmupSteps);
            const double t = std::clamp(double(s - warmupSteps) / double(span), 0.0, 1.0);
            value = baseLr * 0.5 * (1.0 + std::cos(pi * t));
            break;
        }
        }
        if (s < warmupSteps)
            value *= 0.01 + 0.99 * double(s) / double(warmupSteps);
        return value;
    }

    /// LambdaLR's state_dict() (so that a Python script can load it into a LambdaLR with the
    /// same lambda) plus our schedule's parameters under 'ifs_schedule'.
    Value stateDict(qint64 stepsDone) const
    {
        const double last = lr(std::max<qint64>(0, stepsDone));
        return Value::dict({
            {Value(QStringLiteral("base_lrs")), Value::list({Value(baseLr)})},
            {Value(QStringLiteral("last_epoch")), Value(stepsDone)},
            {Value(QStringLiteral("verbose")), Value(false)},
            {Value(QStringLiteral("_step_count")), Value(stepsDone + 1)},
            {Value(QStringLiteral("_get_lr_called_within_step")), Value(false)},
            {Value(QStringLiteral("_last_lr")), Value::list({Value(last)})},
            {Value(QStringLiteral("lr_lambdas")), Value::list({Value()})},
            {Value(QStringLiteral("ifs_schedule")),
             Value::dict({
                 {Value(QStringLiteral("name")), Value(scheduleName(kind))},
                 {Value(QStringLiteral("base_lr")), Value(baseLr)},
                 {Value(QStringLiteral("steps_per_epoch")), Value(stepsPerEpoch)},
                 {Value(QStringLiteral("total_steps")), Value(totalSteps)},
                 {Value(QStringLiteral("warmup_steps")), Value(warmupSteps)},
                 {Value(QStringLiteral("step_epochs")), Value(stepEpochs)},
                 {Value(QStringLiteral("gamma")), Value(gamma)},
             })},
        });
    }
};

// ------------------------------------------------------------------------------------------------
// Optimizers, step for step as torch.optim 1.13's single-tensor implementations, with their
// state_dict() layout.

class Optimizer
{
public:
    Optimizer(const TrainConfig &config, std::vector<torch::Tensor> params)
        : m_config(config)
        , m_params(std::move(params))
        , m_buf(m_params.size())
        , m_expAvg(m_params.size())
        , m_expAvgSq(m_params.size())
        , m_steps(m_params.size(), 0.0)
        , m_lr(config.lr)
    { }

    void zeroGrad()
    {
        for (torch::Tensor &p : m_params) {
            if (p.grad().defined()) {
                p.mutable_grad().detach_();
                p.mutable_grad().zero_();
            }
        }
    }

    /// One update at rate `lr`; `momentum` replaces the configured SGD momentum or Adam's beta1
    /// for this step (OneCycleLR's cycle_momentum).
    void step(double lr, std::optional<double> momentum = std::nullopt)
    {
        m_lr = lr;
        m_momentum = momentum.value_or(configuredMomentum());
        torch::NoGradGuard noGrad;
        const double wd = m_config.weightDecay;
        for (size_t i = 0; i < m_params.size(); ++i) {
            torch::Tensor &p = m_params[i];
            if (!p.grad().defined())
                continue;
            torch::Tensor g = p.grad();
            if (m_config.optimizer == OptimizerKind::SGD) {
                if (wd != 0.0)
                    g = g.add(p, wd);
                const double m = m_momentum;
                if (m != 0.0) {
                    torch::Tensor &buf = m_buf[i];
                    if (!buf.defined())
                        buf = g.clone().detach();
                    else
                        buf.mul_(m).add_(g, 1.0);
                    g = m_config.nesterov ? g.add(buf, m) : buf;
                }
                m_stepped.insert(int(i));
                p.add_(g, -lr);
                continue;
            }
            // Adam / AdamW
            if (!m_expAvg[i].defined()) {
                m_expAvg[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
                m_expAvgSq[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
            }
            m_steps[i] += 1.0;
            if (m_config.optimizer == OptimizerKind::AdamW)
                p.mul_(1.0 - lr * wd);
            else if (wd != 0.0)
                g = g.add(p, wd);
            const double b1 = m_momentum, b2 = m_config.beta2;
            m_expAvg[i].mul_(b1).add_(g, 1.0 - b1);
            m_expAvgSq[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
            const double bc1 = 1.0 - std::pow(b1, m_steps[i]);
            const double bc2 = 1.0 - std::pow(b2, m_steps[i]);
            const torch::Tensor denom = (m_expAvgSq[i].sqrt() / std::sqrt(bc2)).add_(m_config.eps);
            p.addcdiv_(m_expAvg[i], denom, -lr / bc1);
        }
    }

    /// torch.optim's state_dict(): {'state': {index: {...}}, 'param_groups': [{..., 'params':
    /// [0, 1, ...]}]}, with the hyperparameter keys torch 1.13 writes.
    Value stateDict() const
    {
        Value::Entries state;
        for (size_t i = 0; i < m_params.size(); ++i) {
            if (m_config.optimizer == OptimizerKind::SGD) {
                if (!m_stepped.contains(int(i)))
                    continue;
                state.append(
                    {Value(qint64(i)),
                     Value::dict({{Value(QStringLiteral("momentum_buffer")),
                                   m_buf[i].defined() ? Value(tm::toCheckpointTensor(m_buf[i]))
                                                      : Value()}})});
            } else if (m_expAvg[i].defined()) {
                const float step = float(m_steps[i]);
                state.append({Value(qint64(i)),
                              Value::dict({
                                  {Value(QStringLiteral("step")),
                                   Value(ckpt::Tensor::fromFloats(std::span(&step, 1), {}))},
                                  {Value(QStringLiteral("exp_avg")),
                                   Value(tm::toCheckpointTensor(m_expAvg[i]))},
                                  {Value(QStringLiteral("exp_avg_sq")),
                                   Value(tm::toCheckpointTensor(m_expAvgSq[i]))},
                              })});
            }
        }
        QList<Value> indices;
        for (size_t i = 0; i < m_params.size(); ++i)
            indices.append(Value(qint64(i)));
        auto key = [](const char *k) {
            return Value(QString::fromLatin1(k));
        };
        Value::Entries group;
        group.append({key("lr"), Value(m_lr)});
        if (m_config.optimizer == OptimizerKind::SGD) {
            group.append({key("momentum"), Value(m_momentum)});
            group.append({key("dampening"), Value(0)});
            group.append({key("weight_decay"), Value(m_config.weightDecay)});
            group.append({key("nesterov"), Value(m_config.nesterov)});
            group.append({key("maximize"), Value(false)});
            group.append({key("foreach"), Value()});
            group.append({key("differentiable"), Value(false)});
        } else {
            group.append({key("betas"), Value::tuple({Value(m_momentum), Value(m_config.beta2)})});
            group.append({key("eps"), Value(m_config.eps)});
            group.append({key("weight_decay"), Value(m_config.weightDecay)});
            group.append({key("amsgrad"), Value(false)});
            group.append({key("maximize"), Value(false)});
            group.append({key("foreach"), Value()});
            group.append({key("capturable"), Value(false)});
            if (m_config.optimizer == OptimizerKind::Adam) {
                group.append({key("differentiable"), Value(false)});
                group.append({key("fused"), Value(false)});
            }
        }
        group.append({key("params"), Value::list(indices)});
        return Value::dict({{key("state"), Value::dict(std::move(state))},
                            {key("param_groups"), Value::list({Value::dict(std::move(group))})}});
    }

    /// Restores stateDict() (ours or Python's for the same parameters and optimizer type).
    Status load(const Value &dict, const torch::Device &device)
    {
        const Value groups = dict.value(u"param_groups");
        if (!groups.isList() || groups.size() != 1)
            return Error{
                QStringLiteral("the optimizer state has %1 parameter groups; one is expected")
                    .arg(groups.size())};
        if (groups.at(0).value(u"params").size() != qsizetype(m_params.size()))
            return Error{
                QStringLiteral("the optimizer state is for %1 parameters, the model has %2")
                    .arg(groups.at(0).value(u"params").size())
                    .arg(m_params.size())};
        const Value state = dict.value(u"state");
        auto tensorAt
            = [&](const Value &entry, const char *name, size_t i) -> Result<torch::Tensor> {
            const Value v = entry.value(QString::fromLatin1(name));
            if (!v.isTensor())
                return Error{QStringLiteral("the optimizer state lacks '%1' for parameter %2")
                                 .arg(QLatin1String(name))
                                 .arg(i)};
            auto t = tm::fromCheckpointTensor(v.toTensor());
            if (!t)
                return t.error();
            if (t->sizes() != m_params[i].sizes())
                return Error{
                    QStringLiteral("the optimizer state's '%1' for parameter %2 has another shape")
                        .arg(QLatin1String(name))
                        .arg(i)};
            return t->to(device).contiguous(m_params[i].suggest_memory_format());
        };
        for (const auto &[key, entry] : state.entries()) {
            const qint64 i = key.toInt();
            if (i < 0 || i >= qint64(m_params.size()))
                return Error{QStringLiteral("the optimizer state names parameter %1 of %2")
                                 .arg(i)
                                 .arg(m_params.size())};
            const size_t k = size_t(i);
            if (m_config.optimizer == OptimizerKind::SGD) {
                m_stepped.insert(int(k));
                if (entry.value(u"momentum_buffer").isTensor()) {
                    auto t = tensorAt(entry, "momentum_buffer", k);
                    if (!t)
                        return t.error();
                    m_buf[k] = t.value();
                }
            } else {
                auto a = tensorAt(entry, "exp_avg", k);
                auto b = tensorAt(entry, "exp_avg_sq", k);
                if (!a || !b)
                    return !a ? a.error() : b.error();
                m_expAvg[k] = a.value();
                m_expAvgSq[k] = b.value();
                const Value step = entry.value(u"step");
                if (step.isTensor()) {
                    auto s = tm::fromCheckpointTensor(step.toTensor());
                    m_steps[k] = s ? s->item<double>() : 0.0;
                } else {
                    m_steps[k] = step.toDouble();
                }
            }
        }
        m_lr = groups.at(0).value(u"lr").toDouble();
        return success();
    }

private:
    /// SGD's momentum or Adam's beta1 as configured; a schedule may replace it per step.
    double configuredMomentum() const
    {
        return m_config.optimizer == OptimizerKind::SGD ? m_config.momentum : m_config.beta1;
    }

    TrainConfig m_config;
    std::vector<torch::Tensor> m_params;
    std::vector<torch::Tensor> m_buf, m_expAvg, m_expAvgSq;
    std::vector<double> m_steps;
    QSet<int> m_stepped;
    double m_lr;
    double m_momentum = configuredMomentum();
};

// ------------------------------------------------------------------------------------------------

Value jsonToValue(const QJsonValue &json)
{
    switch (json.type()) {
    case QJsonValue::Bool:
        return Value(json.toBool());
    case QJsonValue::Double: {
        const double d = json.toDouble();
        if (d == std::floor(d) && std::abs(d) < 9e15)
            return Value(qint64(d));
        return Value(d);
    }
    case QJsonValue::String:
        return Value(json.toString());
    case QJsonValue::Array: {
        QList<Value> items;
        for (const QJsonValue &v : json.toArray())
            items.append(jsonToValue(v));
        return Value::list(items);
    }
    case QJsonValue::Object: {
        Value::Entries entries;
        const QJsonObject object = json.toObject();
        for (auto it = object.begin(); it != object.end(); ++it)
            entries.append({Value(it.key()), jsonToValue(it.value())});
        return Value::dict(std::move(entries));
    }
    default:
        return Value();
    }
}

Status writeTextAtomically(const QString &path, const QByteArray &bytes)
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit())
        return Error{QStringLiteral("cannot write “%1”: %2").arg(path, file.errorString())};
    return success();
}

QString percent(double fraction)
{
    return QString::number(fraction * 100.0, 'f', 2);
}

// ------------------------------------------------------------------------------------------------
// Pieces of a run

/// The pipelines must work on this dataset's images: each is tried on a first readable image
/// before the run, rather than skipping every image of an epoch. Returns the train pipeline's
/// output size (width × height; invalid when no image could be read).
Result<QSize> checkPipelinesRun(const ResolvedPipelines &pipelines, const TrainingData &data,
                                uint64_t seed)
{
    QSize trainSize;
    for (const auto &[pipeline, samples, what] :
         {std::tuple{&pipelines.train, &data.train, QStringLiteral("train")},
          std::tuple{&pipelines.val, &data.val, QStringLiteral("val")}}) {
        for (const LoaderSample &sample : *samples) {
            auto image = loadTransformInput(sample.path);
            if (!image)
                continue; // a broken image: skipped and listed during the run
            TorchGenerator rng(seed);
            auto run = pipeline->run(image.value(), rng);
            if (!run)
                return Error{QStringLiteral("the %1 transforms fail on “%2”: %3")
                                 .arg(what, sample.path, run.errorMessage())};
            if (!run->output.isTensor())
                return Error{QStringLiteral("the %1 transforms give an image, not a tensor: add "
                                            "transforms.ToTensor() (and Normalize after it)")
                                 .arg(what)};
            if (pipeline == &pipelines.train)
                trainSize = run->output.size();
            break;
        }
    }
    return trainSize;
}

/// Copies the start-up weights of cfg.weightsPath into `net`, prefixes repaired and tensors of
/// another shape (a head for another class count) left initialised. Returns the note that says
/// what was loaded and what was not.
Result<QString> loadStartWeights(tm::Net &net, const TrainConfig &cfg, int numClasses)
{
    auto file = ckpt::readCheckpoint(cfg.weightsPath);
    if (!file)
        return Error{file.errorMessage()};
    auto target = modelTarget(cfg.arch, numClasses);
    if (!target)
        return Error{target.errorMessage()};
    auto fitted = ckpt::fitStateDict(file->root, target.value());
    if (!fitted)
        return Error{QStringLiteral("“%1” holds no weights: %2")
                         .arg(cfg.weightsPath, fitted.errorMessage())};
    const ckpt::RepairProposal &proposal = fitted->proposal;
    QStringList mismatched;
    QStringList copied;
    {
        torch::NoGradGuard noGrad;
        copied = tm::copyMatching(net, fitted->stateDict, &mismatched);
    }
    const ckpt::LoadReport &report = proposal.after;
    if (copied.isEmpty())
        return Error{QStringLiteral("no weight of “%1” fits a %2: %3")
                         .arg(cfg.weightsPath, cfg.arch, report.summary)};
    QString note = QStringLiteral("Weights from %1: %2 of %3 tensors loaded")
                       .arg(QFileInfo(cfg.weightsPath).fileName())
                       .arg(copied.size())
                       .arg(report.targetCount);
    if (!proposal.operations.isEmpty())
        note += QStringLiteral(" after %1").arg(proposal.summary);
    if (!mismatched.isEmpty())
        note += QStringLiteral("; re-initialised (shape differs, e.g. a %1-class head): %2")
                    .arg(numClasses)
                    .arg(mismatched.join(QStringLiteral(", ")));
    if (!report.missing.isEmpty())
        note += QStringLiteral("; not in the file, left initialised: %1")
                    .arg(report.missing.join(QStringLiteral(", ")));
    if (!report.unexpected.isEmpty())
        note += QStringLiteral("; ignored from the file: %1 keys").arg(report.unexpected.size());
    return note;
}

} // namespace

// ------------------------------------------------------------------------------------------------

struct Trainer::Impl
{
    TrainConfig config;

    mutable std::mutex mutex;
    std::condition_variable wake;
    bool paused = false;
    bool stopRequested = false;
    bool saveOnStop = false;
    BatchLoader *activeLoader = nullptr;

    bool stopping() const
    {
        const std::lock_guard lock(mutex);
        return stopRequested;
    }
    /// Blocks while paused, after calling `held`; returns the paused time in seconds.
    double waitWhilePaused(const std::function<void()> &held)
    {
        std::unique_lock lock(mutex);
        if (!paused || stopRequested)
            return 0.0;
        QElapsedTimer timer;
        timer.start();
        if (held) {
            lock.unlock(); // pause() and stop() may come meanwhile: the wait below sees them
            held();
            lock.lock();
        }
        wake.wait(lock, [this] { return !paused || stopRequested; });
        return double(timer.nsecsElapsed()) * 1e-9;
    }
    void setLoader(BatchLoader *loader)
    {
        const std::lock_guard lock(mutex);
        activeLoader = loader;
        if (loader && stopRequested)
            loader->cancel();
    }

    TrainFinish train(const TrainCallbacks &callbacks);
};

Trainer::Trainer(TrainConfig config)
    : d(std::make_unique<Impl>())
{
    d->config = std::move(config);
}

Trainer::~Trainer() = default;

void Trainer::pause()
{
    const std::lock_guard lock(d->mutex);
    d->paused = true;
}

void Trainer::resume()
{
    {
        const std::lock_guard lock(d->mutex);
        d->paused = false;
    }
    d->wake.notify_all();
}

bool Trainer::isPaused() const
{
    const std::lock_guard lock(d->mutex);
    return d->paused;
}

void Trainer::stop(bool saveCheckpoint)
{
    {
        const std::lock_guard lock(d->mutex);
        d->stopRequested = true;
        d->saveOnStop = d->saveOnStop || saveCheckpoint;
        // The loader is cancelled only when nothing is to be saved: a save keeps the batch in
        // hand and stops right after it.
        if (d->activeLoader && !saveCheckpoint)
            d->activeLoader->cancel();
    }
    d->wake.notify_all();
}

TrainFinish Trainer::run(const TrainCallbacks &callbacks)
{
    TrainFinish finish;
    try {
        finish = d->train(callbacks);
    } catch (const c10::Error &e) {
        QString what = QString::fromStdString(e.what_without_backtrace());
        if (what.contains(QStringLiteral("out of memory")))
            what = QStringLiteral("the device ran out of memory: lower the batch size or choose a "
                                  "smaller model (%1)")
                       .arg(what.section(u'\n', 0, 0));
        finish.outcome = TrainOutcome::Failed;
        finish.message = QStringLiteral("Training failed: %1").arg(what.section(u'\n', 0, 1));
    } catch (const std::exception &e) {
        finish.outcome = TrainOutcome::Failed;
        finish.message = QStringLiteral("Training failed: %1").arg(QString::fromUtf8(e.what()));
    }
    d->setLoader(nullptr);
    if (callbacks.finished)
        callbacks.finished(finish);
    return finish;
}

TrainFinish Trainer::Impl::train(const TrainCallbacks &callbacks)
{
    TrainFinish finish;
    auto fail = [&finish](const QString &message) {
        finish.outcome = TrainOutcome::Failed;
        finish.message = message;
        return finish;
    };
    auto status = [&](const QString &text) {
        if (callbacks.status)
            callbacks.status(text);
    };

    TrainConfig cfg = config;
    if (Status ok = cfg.validate(); !ok)
        return fail(ok.errorMessage());

    // A resume takes the run's settings from the checkpoint (except where to run and how many
    // epochs in all), so that the trajectory continues as it was.
    Value resumeRoot;
    TrainStart start;
    if (!cfg.resumePath.isEmpty()) {
        status(QStringLiteral("Reading %1…").arg(QFileInfo(cfg.resumePath).fileName()));
        auto file = ckpt::readCheckpoint(cfg.resumePath);
        if (!file)
            return fail(file.errorMessage());
        resumeRoot = file->root;
        if (!resumeRoot.isDict() || !resumeRoot.contains(u"model_state_dict"))
            return fail(QStringLiteral("“%1” is not a training checkpoint (no 'model_state_dict'): "
                                       "use it as start-up weights (--weights) instead")
                            .arg(cfg.resumePath));
        if (!cfg.resumeWeightsOnly) {
            if (auto saved = TrainConfig::fromJson(
                    QJsonDocument::fromJson(resumeRoot.value(u"config_json").toString().toUtf8())
                        .object()))
                cfg = exactResumeConfig(saved.value(), cfg);
        }
        const QString arch = resumeRoot.value(u"arch").toString();
        if (!arch.isEmpty() && arch != cfg.arch) {
            start.notes.append(QStringLiteral("The checkpoint holds a %1: training that, not %2")
                                   .arg(arch, cfg.arch));
            cfg.arch = arch;
        }
    }

    auto device = resolveDevice(cfg.device);
    if (!device)
        return fail(device.errorMessage());
    const torch::Device dev(device->first.toStdString());
    const bool cuda = dev.is_cuda();
    auto cudaGenerator = [&] {
        return at::globalContext().defaultGenerator(dev);
    };
    if (cfg.threads > 0)
        at::set_num_threads(cfg.threads);
    if (cuda)
        at::globalContext().setBenchmarkCuDNN(true);

    status(QStringLiteral("Scanning the dataset…"));
    auto data = prepareTrainingData(cfg);
    if (!data)
        return fail(data.errorMessage());
    if (stopping()) {
        finish.outcome = TrainOutcome::Stopped;
        finish.message = QStringLiteral("Stopped before the first batch");
        return finish;
    }
    auto pipelines = resolvePipelines(cfg.trainTransforms, cfg.valTransforms, data->traits);
    if (!pipelines)
        return fail(pipelines.errorMessage());
    const int numClasses = int(data->classes.size());
    const Result<QSize> inputSize = checkPipelinesRun(pipelines.value(), data.value(), cfg.seed);
    if (!inputSize)
        return fail(inputSize.errorMessage());
    if (const ModelArch *arch = findModelArch(cfg.arch)) {
        if (QString note = inputSizeNote(*arch, inputSize.value()); !note.isEmpty())
            start.advice.append(note);
    }

    if (resumeRoot.isDict()) {
        // The class indices must mean the same.
        const std::optional<QStringList> saved
            = classesFromClassToIdx(resumeRoot.value(u"class_to_idx"));
        if (saved != data->classes)
            return fail(QStringLiteral("the checkpoint was trained on other classes (%1) than this "
                                       "dataset has (%2): resume needs the same classes")
                            .arg(saved ? saved->join(QStringLiteral(", "))
                                       : QStringLiteral("no valid class_to_idx"),
                                 data->classes.join(QStringLiteral(", "))));
    }

    // The model, seeded as `torch.manual_seed(seed)` before building it in Python.
    torch::manual_seed(cfg.seed);
    auto netResult = tm::createNet(cfg.arch, numClasses);
    if (!netResult)
        return fail(netResult.errorMessage());
    std::shared_ptr<tm::Net> net = netResult.value();

    if (!cfg.weightsPath.isEmpty() && !resumeRoot.isDict()) {
        status(
            QStringLiteral("Loading weights from %1…").arg(QFileInfo(cfg.weightsPath).fileName()));
        auto note = loadStartWeights(*net, cfg, numClasses);
        if (!note)
            return fail(note.errorMessage());
        start.notes.append(note.value());
    }

    net->to(dev);
    const bool channelsLast = usesChannelsLast(cfg.memoryFormat, cuda);
    if (channelsLast)
        tm::setChannelsLast(*net, true);

    std::vector<torch::Tensor> params;
    for (auto &[name, p] : tm::parameterEntries(*net))
        params.push_back(p);
    Optimizer optimizer(cfg, params);

    BatchLoaderOptions trainOptions;
    trainOptions.batchSize = cfg.batchSize;
    trainOptions.workers = cfg.workers;
    trainOptions.shuffle = true;
    trainOptions.dropLast = cfg.dropLast && qsizetype(data->train.size()) >= cfg.batchSize;
    trainOptions.seed = cfg.seed;
    BatchLoader trainLoader(data->train, pipelines->train, trainOptions);
    const int batchesPerEpoch = trainLoader.batchesPerEpoch();
    if (batchesPerEpoch == 0)
        return fail(QStringLiteral("no training batch: %1 images, batch size %2")
                        .arg(data->train.size())
                        .arg(cfg.batchSize));
    BatchLoaderOptions valOptions;
    valOptions.batchSize = std::max(cfg.batchSize, 128);
    valOptions.workers = cfg.workers;
    valOptions.shuffle = false;
    valOptions.seed = cfg.seed;
    std::unique_ptr<BatchLoader> valLoader;
    if (!data->val.empty())
        valLoader = std::make_unique<BatchLoader>(data->val, pipelines->val, valOptions);

    Schedule schedule;
    schedule.kind = cfg.schedule;
    schedule.baseLr = cfg.lr;
    schedule.stepsPerEpoch = batchesPerEpoch;
    schedule.totalSteps = qint64(batchesPerEpoch) * cfg.epochs;
    schedule.warmupSteps = cfg.schedule == ScheduleKind::OneCycle
        ? 0
        : qint64(std::llround(cfg.warmupEpochs * batchesPerEpoch));
    schedule.stepEpochs = cfg.stepEpochs;
    schedule.gamma = cfg.stepGamma;

    // Resume state.
    int firstEpoch = 1;
    int firstBatch = 0;
    qint64 step = 0;
    double bestAccuracy = -1.0;
    QList<EpochRecord> history;
    QList<StepRecord> stepLog;
    double partialLoss = 0.0, partialSeconds = 0.0;
    qint64 partialCorrect = 0, partialSeen = 0;
    if (resumeRoot.isDict()) {
        auto dict = ckpt::extractStateDict(resumeRoot);
        if (!dict)
            return fail(dict.errorMessage());
        QStringList mismatched;
        QStringList copied;
        {
            torch::NoGradGuard noGrad;
            copied = tm::copyMatching(*net, dict->tensors, &mismatched);
        }
        const auto expected = tm::stateDictEntries(*net).size();
        if (size_t(copied.size()) != expected)
            return fail(QStringLiteral("the checkpoint's weights do not fit a %1 with %2 classes "
                                       "(%3 of %4 tensors fit)")
                            .arg(cfg.arch)
                            .arg(numClasses)
                            .arg(copied.size())
                            .arg(expected));
        if (cfg.resumeWeightsOnly) {
            start.notes.append(
                QStringLiteral("Weights from %1 (epoch %2); new optimizer and schedule, "
                               "epochs counted from 1")
                    .arg(QFileInfo(cfg.resumePath).fileName())
                    .arg(resumeRoot.value(u"epoch").toInt()));
        } else {
            if (Status ok = optimizer.load(resumeRoot.value(u"optimizer_state_dict"), dev); !ok)
                return fail(QStringLiteral("cannot resume exactly: %1").arg(ok.errorMessage()));
            const int epochsDone = int(resumeRoot.value(u"epoch").toInt());
            step = resumeRoot.value(u"step").toInt();
            const Value progress = resumeRoot.value(u"progress");
            firstBatch = int(progress.value(u"batch").toInt());
            firstEpoch = epochsDone + 1;
            partialLoss = progress.value(u"loss_sum").toDouble();
            partialCorrect = progress.value(u"correct").toInt();
            partialSeen = progress.value(u"seen").toInt();
            partialSeconds = progress.value(u"seconds").toDouble();
            const Value rng = resumeRoot.value(u"rng_state");
            if (rng.isTensor()) {
                auto state = tm::fromCheckpointTensor(rng.toTensor());
                if (state && state->scalar_type() == torch::kByte) {
                    at::Generator generator = at::detail::getDefaultCPUGenerator();
                    generator.set_state(state.value());
                }
            }
            const Value cudaRng = resumeRoot.value(u"cuda_rng_state");
            if (cuda && cudaRng.isTensor()) {
                auto state = tm::fromCheckpointTensor(cudaRng.toTensor());
                if (state && state->scalar_type() == torch::kByte)
                    cudaGenerator().set_state(state.value());
            }
            const Value metrics = resumeRoot.value(u"metrics");
            bestAccuracy = metrics.contains(u"best_val_accuracy")
                ? metrics.value(u"best_val_accuracy").toDouble() / 100.0
                : -1.0;
            history = historyFromValue(metrics.value(u"history"));
            stepLog = stepLogFromValue(metrics.value(u"step_log"));
            start.notes.append(QStringLiteral("Resumed exactly from %1: epoch %2, step %3")
                                   .arg(QFileInfo(cfg.resumePath).fileName())
                                   .arg(firstEpoch)
                                   .arg(step));
        }
    }

    // The run folder.
    QDir outDir(cfg.outDir);
    if (!outDir.mkpath(QStringLiteral(".")))
        return fail(QStringLiteral("cannot create the run folder “%1”").arg(cfg.outDir));
    if (Status ok = writeTextAtomically(outDir.filePath(QStringLiteral("config.json")),
                                        QJsonDocument(cfg.toJson()).toJson());
        !ok)
        return fail(ok.errorMessage());
    // How to rebuild the model in Python (with SmallCNN's definition when it is ours).
    if (Status ok = writeTextAtomically(
            outDir.filePath(QStringLiteral("load_model.py")),
            modelPythonSnippet(cfg.arch, numClasses, QStringLiteral("last.pth")).toUtf8());
        !ok)
        return fail(ok.errorMessage());
    QFile stepsFile(outDir.filePath(QStringLiteral("steps.csv")));
    if (!stepsFile.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text))
        return fail(QStringLiteral("cannot write “%1”: %2")
                        .arg(stepsFile.fileName(), stepsFile.errorString()));
    stepsFile.write(stepsCsvHeader());
    for (const StepRecord &s : stepLog)
        stepsFile.write(stepsCsvRow(s));
    stepsFile.flush();

    const QString lastPath = outDir.filePath(QStringLiteral("last.pth"));
    const QString bestPath = outDir.filePath(QStringLiteral("best.pth"));

    QJsonObject savedConfig = cfg.toJson();
    savedConfig.remove(QStringLiteral("resume"));
    savedConfig.remove(QStringLiteral("maxSteps"));
    const QByteArray configJson = QJsonDocument(savedConfig).toJson(QJsonDocument::Compact);

    // Builds the checkpoint. `epochsDone` complete epochs; `batchInEpoch` > 0 for a save inside
    // an epoch (with the partial epoch's sums).
    auto checkpoint = [&](int epochsDone, int batchInEpoch, double lossSum, qint64 correct,
                          qint64 seen, double seconds) {
        Value::Entries classToIdx;
        for (int i = 0; i < numClasses; ++i)
            classToIdx.append({Value(data->classes[i]), Value(i)});
        Value::Entries metrics;
        metrics.append({Value(QStringLiteral("history")), historyToValue(history)});
        if (!history.isEmpty()) {
            const EpochRecord &last = history.last();
            metrics.append({Value(QStringLiteral("train_loss")), Value(last.trainLoss)});
            metrics.append({Value(QStringLiteral("train_acc")), Value(last.trainAccuracy * 100.0)});
            if (valLoader) {
                metrics.append({Value(QStringLiteral("val_loss")), Value(last.valLoss)});
                metrics.append({Value(QStringLiteral("val_acc")), Value(last.valAccuracy * 100.0)});
            }
        }
        if (bestAccuracy >= 0.0)
            metrics.append(
                {Value(QStringLiteral("best_val_accuracy")), Value(bestAccuracy * 100.0)});
        metrics.append({Value(QStringLiteral("step_log")), stepLogToValue(stepLog)});
        const torch::Tensor rng = at::detail::getDefaultCPUGenerator().get_state();
        Value root = Value::dict({
            {Value(QStringLiteral("model_state_dict")), tm::stateDictValue(*net)},
            {Value(QStringLiteral("optimizer_state_dict")), optimizer.stateDict()},
            {Value(QStringLiteral("scheduler_state_dict")), schedule.stateDict(step)},
            {Value(QStringLiteral("epoch")), Value(epochsDone)},
            {Value(QStringLiteral("step")), Value(step)},
            {Value(QStringLiteral("class_to_idx")), Value::dict(std::move(classToIdx))},
            {Value(QStringLiteral("arch")), Value(cfg.arch)},
            {Value(QStringLiteral("num_classes")), Value(numClasses)},
            {Value(QStringLiteral("transforms")),
             Value::dict({{Value(QStringLiteral("train")), Value(pipelines->trainSource)},
                          {Value(QStringLiteral("val")), Value(pipelines->valSource)}})},
            {Value(QStringLiteral("metrics")), Value::dict(std::move(metrics))},
            {Value(QStringLiteral("progress")),
             Value::dict({{Value(QStringLiteral("batch")), Value(batchInEpoch)},
                          {Value(QStringLiteral("loss_sum")), Value(lossSum)},
                          {Value(QStringLiteral("correct")), Value(correct)},
                          {Value(QStringLiteral("seen")), Value(seen)},
                          {Value(QStringLiteral("seconds")), Value(seconds)}})},
            {Value(QStringLiteral("rng_state")), Value(tm::toCheckpointTensor(rng))},
            {Value(QStringLiteral("seed")), Value(QString::number(cfg.seed))},
            {Value(QStringLiteral("config")), jsonToValue(savedConfig)},
            {Value(QStringLiteral("config_json")), Value(QString::fromUtf8(configJson))},
            {Value(QStringLiteral("app")), Value(QStringLiteral("ImageFolder Studio"))},
        });
        if (cuda) // torch.cuda.get_rng_state(): dropout draws from it
            root.insert(Value(QStringLiteral("cuda_rng_state")),
                        Value(tm::toCheckpointTensor(cudaGenerator().get_state())));
        return root;
    };

    auto writeMetricsCsv = [&]() -> Status {
        return writeTextAtomically(outDir.filePath(QStringLiteral("metrics.csv")),
                                   metricsCsv(history));
    };
    if (Status ok = writeMetricsCsv(); !ok)
        return fail(ok.errorMessage());

    start.arch = cfg.arch;
    start.device = device->first;
    start.deviceNote = device->second;
    start.threads = at::get_num_threads();
    start.runtime = QStringLiteral("%1, %2%3%4")
                        .arg(torchDescription())
                        .arg(start.threads == 1 ? QStringLiteral("1 thread")
                                                : QStringLiteral("%1 threads").arg(start.threads))
                        .arg(channelsLast ? QStringLiteral(", channels_last") : QString())
                        .arg(cuda && cfg.amp != AmpMode::Off
                                 ? QStringLiteral(", AMP %1").arg(ampName(cfg.amp))
                                 : QString());
    start.classes = data->classes;
    start.trainSamples = qsizetype(data->train.size());
    start.valSamples = qsizetype(data->val.size());
    start.batchesPerEpoch = batchesPerEpoch;
    start.epochs = cfg.epochs;
    start.startEpoch = firstEpoch;
    start.startStep = step;
    start.inputPath = trainLoader.pathDescription();
    start.trainTransforms = pipelines->trainSource;
    start.valTransforms = pipelines->valSource;
    start.notes = data->notes + pipelines->notes + start.advice + start.notes;
    start.history.folder = cfg.outDir;
    start.history.name = outDir.dirName();
    start.history.epochs = history;
    start.history.steps = stepLog;
    if (cfg.amp != AmpMode::Off && !cuda)
        start.notes.append(
            QStringLiteral("Mixed precision is for CUDA only: training in float32 on the CPU"));
    if (callbacks.started)
        callbacks.started(start);

    const bool amp = cuda && cfg.amp != AmpMode::Off;
    const auto ampType = cfg.amp == AmpMode::Float16 ? torch::kHalf : torch::kBFloat16;
    double lossScale = cfg.amp == AmpMode::Float16 ? 65536.0 : 1.0;
    int goodSteps = 0;
    auto toDevice = [&](const Batch &batch) {
        return tm::batchToDevice(batch, dev, channelsLast);
    };
    auto labelsOf = [&](const Batch &batch) {
        torch::Tensor cpu = torch::from_blob(const_cast<int64_t *>(batch.labels.data()),
                                             {batch.count}, torch::kLong)
                                .clone();
        return cuda ? cpu.to(dev, true) : cpu;
    };

    QSet<QString> reportedFailures;
    auto newFailures = [&](const BatchLoader &loader) {
        QList<LoaderFailure> fresh;
        for (const LoaderFailure &f : loader.failures()) {
            if (!reportedFailures.contains(f.path)) {
                reportedFailures.insert(f.path);
                fresh.append(f);
                finish.skippedImages.append(f);
            }
        }
        return fresh;
    };

    const qint64 totalSteps = schedule.totalSteps;
    std::deque<std::pair<double, qint64>> recent; // (time, images) for the speed average
    QElapsedTimer clock;
    clock.start();
    double pausedTotal = 0.0;
    double lastValSeconds = 0.0;
    int epochsDone = firstEpoch - 1;
    finish.bestValAccuracy = bestAccuracy;
    bool stoppedEarly = false;

    auto saveStop = [&](int epoch, int batchInEpoch, double lossSum, qint64 correct, qint64 seen,
                        double seconds) -> Status {
        status(QStringLiteral("Saving last.pth…"));
        const Status ok = ckpt::writeCheckpoint(
            lastPath, checkpoint(epoch - 1, batchInEpoch, lossSum, correct, seen, seconds));
        if (ok)
            finish.lastCheckpoint = lastPath;
        return ok;
    };

    for (int epoch = firstEpoch; epoch <= cfg.epochs && !stoppedEarly; ++epoch) {
        net->train();
        setLoader(&trainLoader);
        const int skip = epoch == firstEpoch ? firstBatch : 0;
        trainLoader.startEpoch(epoch - 1, skip);
        double lossSum = skip ? partialLoss : 0.0;
        qint64 correct = skip ? partialCorrect : 0;
        qint64 seen = skip ? partialSeen : 0;
        QElapsedTimer epochClock;
        epochClock.start();
        double epochPaused = 0.0;
        const double epochOffset = skip ? partialSeconds : 0.0;
        int batchIndex = skip;
        qint64 epochImages = 0;

        while (batchIndex < batchesPerEpoch) {
            if (cfg.maxSteps > 0 && step >= cfg.maxSteps) {
                {
                    const std::lock_guard lock(mutex);
                    stopRequested = true;
                    saveOnStop = true;
                }
            }
            const double pausedNow = waitWhilePaused(callbacks.held);
            epochPaused += pausedNow;
            pausedTotal += pausedNow;
            bool saveNow = false;
            {
                const std::lock_guard lock(mutex);
                if (stopRequested) {
                    stoppedEarly = true;
                    saveNow = saveOnStop;
                }
            }
            if (stoppedEarly) {
                if (saveNow && batchIndex > 0 && batchIndex < batchesPerEpoch) {
                    const double seconds
                        = epochOffset + double(epochClock.nsecsElapsed()) * 1e-9 - epochPaused;
                    if (Status ok = saveStop(epoch, batchIndex, lossSum, correct, seen, seconds);
                        !ok)
                        return fail(ok.errorMessage());
                }
                break;
            }
            std::optional<Batch> batch = trainLoader.next();
            if (!batch)
                break;
            if (batch->count == 0) {
                trainLoader.recycle(std::move(*batch));
                ++batchIndex;
                continue;
            }
            const torch::Tensor input = toDevice(*batch);
            const torch::Tensor labels = labelsOf(*batch);
            const int count = batch->count;
            trainLoader.recycle(std::move(*batch));

            const double lr = schedule.lr(step);
            optimizer.zeroGrad();
            torch::Tensor logits;
            torch::Tensor loss;
            {
                tm::AutocastScope autocast(amp, ampType);
                logits = net->forward(input);
                loss = torch::nn::functional::cross_entropy(
                    logits.to(torch::kFloat), labels,
                    torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(
                        cfg.labelSmoothing));
            }
            (lossScale != 1.0 ? loss * lossScale : loss).backward();
            bool finite = true;
            if (lossScale != 1.0) {
                torch::NoGradGuard noGrad;
                for (torch::Tensor &p : params) {
                    if (p.grad().defined())
                        p.mutable_grad().mul_(1.0 / lossScale);
                }
                std::vector<torch::Tensor> norms;
                for (torch::Tensor &p : params) {
                    if (p.grad().defined())
                        norms.push_back(p.grad().abs().max());
                }
                finite = norms.empty() || torch::stack(norms).isfinite().all().item<bool>();
            }
            if (finite && cfg.gradClipNorm > 0.0)
                torch::nn::utils::clip_grad_norm_(params, cfg.gradClipNorm);
            if (finite) {
                optimizer.step(lr, schedule.momentum(step));
                if (lossScale != 1.0 && ++goodSteps >= 2000) {
                    lossScale *= 2.0;
                    goodSteps = 0;
                }
            } else {
                lossScale /= 2.0;
                goodSteps = 0;
            }
            ++step;
            ++batchIndex;

            const double lossValue = loss.item<double>();
            const qint64 right = logits.argmax(1).eq(labels).sum().item<int64_t>();
            lossSum += lossValue * count;
            correct += right;
            seen += count;
            epochImages += count;
            stepLog.append({step, epoch, lossValue, lr});
            stepsFile.write(stepsCsvRow(stepLog.last()));

            const double now = double(clock.nsecsElapsed()) * 1e-9 - pausedTotal;
            recent.emplace_back(now, count);
            while (recent.size() > 50)
                recent.pop_front();
            qint64 recentImages = 0;
            for (size_t i = 1; i < recent.size(); ++i)
                recentImages += recent[i].second;
            const double span = recent.back().first - recent.front().first;
            StepProgress progress;
            progress.epoch = epoch;
            progress.batch = batchIndex;
            progress.batches = batchesPerEpoch;
            progress.step = step;
            progress.totalSteps = totalSteps;
            progress.loss = lossValue;
            progress.accuracy = double(right) / double(count);
            progress.lr = lr;
            progress.imagesPerSecond = span > 0 ? double(recentImages) / span : 0.0;
            if (span > 0 && recent.size() > 3) {
                const double perStep = span / double(recent.size() - 1);
                progress.etaSeconds = perStep * double(totalSteps - step)
                    + lastValSeconds * double(cfg.epochs - epoch + 1);
            }
            if (callbacks.step)
                callbacks.step(progress);
        }
        stepsFile.flush();
        if (stoppedEarly)
            break;
        if (batchIndex < batchesPerEpoch) {
            // The loader was cancelled (a stop while waiting for a batch).
            stoppedEarly = true;
            break;
        }
        if (seen == 0) {
            const QList<LoaderFailure> failures = trainLoader.failures();
            return fail(QStringLiteral("no training image could be loaded in epoch %1%2")
                            .arg(epoch)
                            .arg(failures.isEmpty()
                                     ? QString()
                                     : QStringLiteral(": “%1”: %2")
                                           .arg(failures.front().path, failures.front().message)));
        }

        // Validation.
        EpochReport report;
        EpochRecord &record = report.record;
        record.epoch = epoch;
        record.step = step;
        record.trainLoss = seen ? lossSum / double(seen) : 0.0;
        record.trainAccuracy = seen ? double(correct) / double(seen) : 0.0;
        record.lr = schedule.lr(std::max<qint64>(0, step - 1));
        const double trainSeconds
            = epochOffset + double(epochClock.nsecsElapsed()) * 1e-9 - epochPaused;
        record.imagesPerSecond
            = trainSeconds > 0 ? double(epochImages) / (trainSeconds - epochOffset) : 0.0;
        if (valLoader) {
            status(QStringLiteral("Validating epoch %1…").arg(epoch));
            QElapsedTimer valClock;
            valClock.start();
            setLoader(valLoader.get());
            auto evaluation
                = tm::evaluateNet(*net, *valLoader, data->val, data->classes, dev, channelsLast,
                                  amp ? std::optional(ampType) : std::nullopt, [this] {
                                      // "Save and stop" lets the validation finish,
                                      // so that the epoch's checkpoint is written.
                                      const std::lock_guard lock(mutex);
                                      return stopRequested && !saveOnStop;
                                  });
            setLoader(nullptr);
            lastValSeconds = double(valClock.nsecsElapsed()) * 1e-9;
            if (!evaluation) {
                if (stopping()) {
                    stoppedEarly = true;
                    break;
                }
                return fail(evaluation.errorMessage());
            }
            record.valLoss = evaluation->loss;
            record.valAccuracy = evaluation->accuracy;
            report.evaluation = std::make_shared<const Evaluation>(std::move(evaluation).value());
        }
        record.seconds = double(epochClock.nsecsElapsed()) * 1e-9 - epochPaused + epochOffset;
        history.append(record);
        epochsDone = epoch;

        status(QStringLiteral("Saving checkpoints…"));
        report.best = valLoader && record.valAccuracy > bestAccuracy;
        if (report.best)
            bestAccuracy = record.valAccuracy;
        const Value ck = checkpoint(epoch, 0, 0.0, 0, 0, 0.0);
        if (Status ok = ckpt::writeCheckpoint(lastPath, ck); !ok)
            return fail(ok.errorMessage());
        finish.lastCheckpoint = lastPath;
        report.lastCheckpoint = lastPath;
        if (report.best) {
            if (Status ok = ckpt::writeCheckpoint(bestPath, ck); !ok)
                return fail(ok.errorMessage());
            finish.bestCheckpoint = bestPath;
        }
        if (QFileInfo::exists(bestPath))
            report.bestCheckpoint = bestPath;
        if (cfg.saveEveryEpochs > 0 && epoch % cfg.saveEveryEpochs == 0) {
            const QString path
                = outDir.filePath(QStringLiteral("epoch_%1.pth").arg(epoch, 3, 10, QChar(u'0')));
            if (Status ok = ckpt::writeCheckpoint(path, ck); !ok)
                return fail(ok.errorMessage());
        }
        if (Status ok = writeMetricsCsv(); !ok)
            return fail(ok.errorMessage());
        report.newFailures = newFailures(trainLoader);
        if (valLoader)
            report.newFailures += newFailures(*valLoader);
        finish.bestValAccuracy = bestAccuracy;
        if (callbacks.epoch)
            callbacks.epoch(report);
        if (epoch < cfg.epochs && (stopping() || (cfg.maxSteps > 0 && step >= cfg.maxSteps)))
            stoppedEarly = true;
    }
    newFailures(trainLoader);
    if (valLoader)
        newFailures(*valLoader);

    finish.epochsDone = epochsDone;
    finish.steps = step;
    finish.bestValAccuracy = bestAccuracy;
    if (finish.bestCheckpoint.isEmpty() && QFileInfo::exists(bestPath))
        finish.bestCheckpoint = bestPath;
    if (finish.lastCheckpoint.isEmpty() && QFileInfo::exists(lastPath) && epochsDone >= firstEpoch)
        finish.lastCheckpoint = lastPath;
    const QString skipped = finish.skippedImages.isEmpty()
        ? QString()
        : QStringLiteral(" %1 unreadable image(s) were skipped.").arg(finish.skippedImages.size());
    const QString best = bestAccuracy >= 0.0
        ? QStringLiteral(", best validation accuracy %1%").arg(percent(bestAccuracy))
        : QString();
    if (stoppedEarly) {
        finish.outcome = TrainOutcome::Stopped;
        finish.message = QStringLiteral("Stopped after %1 complete epoch(s), step %2%3.%4")
                             .arg(epochsDone)
                             .arg(step)
                             .arg(best, skipped);
    } else {
        finish.outcome = TrainOutcome::Completed;
        finish.message = QStringLiteral("Trained %1 epoch(s) in %2 s%3.%4")
                             .arg(epochsDone)
                             .arg(double(clock.nsecsElapsed()) * 1e-9 - pausedTotal, 0, 'f', 1)
                             .arg(best, skipped);
    }
    return finish;
}

} // namespace ifs
