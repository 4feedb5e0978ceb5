// The training loop (libtorch). See training.h for what a run writes.

#include "training/training.h"

#include "base/atomicfile.h"
#include "base/cpufeatures.h"
#include "base/memorybudget.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointwriter.h"
#include "torch/featurecache.h"
#include "torch/processgroup.h"
#include "torch/runtime.h"
#include "torch/torchmodels.h"
#include "training/lrfinder.h"
#include "training/models.h"
#include "training/pretrained.h"
#include "training/runfolder.h"
#include "training/runrecords.h"
#include "training/tensorboardwriter.h"
#include "training/trainingdata.h"
#include "training/weightsdownload.h"
#include "transforms/torchrng.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLocale>
#include <QScopeGuard>
#include <QSet>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <numbers>
#include <thread>

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
    /// same lambda) plus our schedule's parameters under 'ifs_schedule'. `lrFactors`: each
    /// parameter group's share of the rate (fine-tuning's backbone factor).
    Value stateDict(qint64 stepsDone, const std::vector<double> &lrFactors) const
    {
        const double last = lr(std::max<qint64>(0, stepsDone));
        QList<Value> baseLrs, lastLrs, lambdas;
        for (const double factor : lrFactors) {
            baseLrs.append(Value(baseLr * factor));
            lastLrs.append(Value(last * factor));
            lambdas.append(Value());
        }
        return Value::dict({
            {Value(QStringLiteral("base_lrs")), Value::list(baseLrs)},
            {Value(QStringLiteral("last_epoch")), Value(stepsDone)},
            {Value(QStringLiteral("verbose")), Value(false)},
            {Value(QStringLiteral("_step_count")), Value(stepsDone + 1)},
            {Value(QStringLiteral("_get_lr_called_within_step")), Value(false)},
            {Value(QStringLiteral("_last_lr")), Value::list(lastLrs)},
            {Value(QStringLiteral("lr_lambdas")), Value::list(lambdas)},
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

/// A parameter group: its parameters and its share of the schedule's rate.
struct ParamGroup
{
    std::vector<torch::Tensor> params;
    double lrFactor = 1.0;
};

class Optimizer
{
public:
    Optimizer(const TrainConfig &config, std::vector<ParamGroup> groups)
        : m_config(config)
        , m_lr(config.lr)
    {
        for (ParamGroup &group : groups)
            addGroup(std::move(group));
    }

    /// Appends a group, as torch.optim's add_param_group(): its parameters get the next
    /// indices and fresh state.
    void addGroup(ParamGroup group)
    {
        m_groupSizes.push_back(group.params.size());
        m_groupFactors.push_back(group.lrFactor);
        for (torch::Tensor &p : group.params) {
            m_params.push_back(p);
            m_factorOf.push_back(group.lrFactor);
        }
        m_buf.resize(m_params.size());
        m_expAvg.resize(m_params.size());
        m_expAvgSq.resize(m_params.size());
        m_steps.resize(m_params.size(), 0.0);
    }

    /// Every parameter it updates, group after group.
    const std::vector<torch::Tensor> &params() const { return m_params; }

    /// Forgets every parameter's state, as a fresh optimizer over the same groups has none
    /// (before load() restores a saved one: the LR finder).
    void clearState()
    {
        for (size_t i = 0; i < m_params.size(); ++i) {
            m_buf[i] = m_expAvg[i] = m_expAvgSq[i] = torch::Tensor();
            m_steps[i] = 0.0;
        }
        m_stepped.clear();
    }
    /// Each group's share of the rate.
    const std::vector<double> &lrFactors() const { return m_groupFactors; }

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
            const double groupLr = lr * m_factorOf[i];
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
                p.add_(g, -groupLr);
                continue;
            }
            // Adam / AdamW
            if (!m_expAvg[i].defined()) {
                m_expAvg[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
                m_expAvgSq[i] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
            }
            m_steps[i] += 1.0;
            if (m_config.optimizer == OptimizerKind::AdamW)
                p.mul_(1.0 - groupLr * wd);
            else if (wd != 0.0)
                g = g.add(p, wd);
            const double b1 = m_momentum, b2 = m_config.beta2;
            m_expAvg[i].mul_(b1).add_(g, 1.0 - b1);
            m_expAvgSq[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
            const double bc1 = 1.0 - std::pow(b1, m_steps[i]);
            const double bc2 = 1.0 - std::pow(b2, m_steps[i]);
            const torch::Tensor denom = (m_expAvgSq[i].sqrt() / std::sqrt(bc2)).add_(m_config.eps);
            p.addcdiv_(m_expAvg[i], denom, -groupLr / bc1);
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
        auto key = [](const char *k) {
            return Value(QString::fromLatin1(k));
        };
        QList<Value> groups;
        qint64 next = 0;
        for (size_t g = 0; g < m_groupSizes.size(); ++g) {
            QList<Value> indices;
            for (size_t i = 0; i < m_groupSizes[g]; ++i)
                indices.append(Value(next++));
            groups.append(groupValue(m_lr * m_groupFactors[g], indices));
        }
        return Value::dict({{key("state"), Value::dict(std::move(state))},
                            {key("param_groups"), Value::list(groups)}});
    }

    /// One of state_dict()'s 'param_groups', with the hyperparameter keys torch 1.13 writes.
    Value groupValue(double lr, const QList<Value> &indices) const
    {
        auto key = [](const char *k) {
            return Value(QString::fromLatin1(k));
        };
        Value::Entries group;
        group.append({key("lr"), Value(lr)});
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
        return Value::dict(std::move(group));
    }

    /// Restores stateDict() (ours or Python's for the same parameters and optimizer type).
    Status load(const Value &dict, const torch::Device &device)
    {
        const Value groups = dict.value(u"param_groups");
        if (!groups.isList() || groups.size() != qsizetype(m_groupSizes.size()))
            return Error{
                m_groupSizes.size() == 1
                    ? QStringLiteral("the optimizer state has %1 parameter groups; one is expected")
                          .arg(groups.size())
                    : QStringLiteral("the optimizer state has %1 parameter groups; %2 "
                                     "are expected (head and backbone)")
                          .arg(groups.size())
                          .arg(m_groupSizes.size())};
        for (size_t g = 0; g < m_groupSizes.size(); ++g) {
            if (groups.at(qsizetype(g)).value(u"params").size() != qsizetype(m_groupSizes[g]))
                return Error{
                    QStringLiteral("the optimizer state is for %1 parameters, the model has %2")
                        .arg(groups.at(qsizetype(g)).value(u"params").size())
                        .arg(m_groupSizes[g])};
        }
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
        m_lr = groups.at(0).value(u"lr").toDouble() / m_groupFactors.front();
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
    std::vector<double> m_factorOf; ///< per parameter: its group's share of the rate
    std::vector<size_t> m_groupSizes;
    std::vector<double> m_groupFactors;
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

/// What the ranks of a data-parallel run must agree on about their data: the classes, the
/// splits' sizes and a hash of every sample's path (relative to the root) and label.
QJsonObject trainingDataFingerprint(const TrainingData &data, const QString &root)
{
    QCryptographicHash hash(QCryptographicHash::Sha1);
    const QDir base(root);
    for (const auto *split : {&data.train, &data.val}) {
        for (const LoaderSample &sample : *split) {
            hash.addData(base.relativeFilePath(sample.path).toUtf8());
            hash.addData(QByteArray(QByteArray::number(sample.label) + '\n'));
        }
        hash.addData(QByteArrayView("--\n"));
    }
    return QJsonObject{
        {QStringLiteral("classes"), QJsonArray::fromStringList(data.classes)},
        {QStringLiteral("train_images"), qint64(data.train.size())},
        {QStringLiteral("val_images"), qint64(data.val.size())},
        {QStringLiteral("samples_sha1"), QString::fromLatin1(hash.result().toHex())}};
}

QString percent(double fraction)
{
    return QString::number(fraction * 100.0, 'f', 2);
}

/// The training loss: F.cross_entropy(logits, labels, weight=weights (undefined: none),
/// label_smoothing=smoothing), torch's own (a weighted mean divides by the targets' weights).
torch::Tensor crossEntropy(const torch::Tensor &logits, const torch::Tensor &labels,
                           const torch::Tensor &weights, double smoothing)
{
    auto options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(smoothing);
    if (weights.defined())
        options.weight(weights);
    return torch::nn::functional::cross_entropy(logits, labels, options);
}

/// The class weights as the loss takes them: float32, as torch.tensor(weights) in Python.
torch::Tensor classWeightTensor(const std::vector<double> &weights, const torch::Device &device)
{
    if (weights.empty())
        return {};
    return torch::tensor(std::vector<double>(weights), torch::kDouble).to(device, torch::kFloat);
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
            if (!run && run.error().code == ErrorCode::OutOfMemory)
                continue; // a huge image: the loader skips and lists it
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

/// The state dict without the head's tensors (keys under `headPrefix`); their keys go to
/// `dropped`.
Value withoutHead(const Value &stateDict, const QString &headPrefix, QStringList &dropped)
{
    Value::Entries kept;
    for (const Value::Entry &entry : stateDict.entries()) {
        const QString key = entry.first.toString();
        if (key.startsWith(headPrefix))
            dropped.append(key);
        else
            kept.append(entry);
    }
    return Value::orderedDict(std::move(kept));
}

/// Copies the start-up weights of `path` into `net`, prefixes repaired and tensors of another
/// shape (a head for another class count) left initialised; `renames` (a RenameRegex, for
/// pretrained weights whose keys torchvision renames itself) first. A head trained on other
/// classes (the file's class_to_idx names other classes than `classes`, or the same in another
/// order) is left initialised too, even where its shape fits: its outputs would mean other
/// classes. Returns the note that says what was loaded and what was not.
Result<QString> loadStartWeights(tm::Net &net, const QString &path, const QString &archName,
                                 const QStringList &classes,
                                 const QList<ckpt::Operation> &renames = {})
{
    const int numClasses = int(classes.size());
    auto file = ckpt::readCheckpoint(path);
    if (!file)
        return Error{file.errorMessage()};
    Value root = file->root;
    if (!renames.isEmpty()) {
        auto renamed = ckpt::applyOperations(root, renames);
        if (!renamed)
            return Error{QStringLiteral("“%1”: %2").arg(path, renamed.errorMessage())};
        root = renamed->value;
    }
    auto target = modelTarget(archName, numClasses);
    if (!target)
        return Error{target.errorMessage()};
    auto fitted = ckpt::fitStateDict(root, target.value());
    if (!fitted)
        return Error{QStringLiteral("“%1” holds no weights: %2").arg(path, fitted.errorMessage())};
    const ckpt::RepairProposal &proposal = fitted->proposal;
    const std::optional<QStringList> fileClasses
        = root.isDict() ? classesFromClassToIdx(root.value(u"class_to_idx")) : std::nullopt;
    const ModelArch *arch = findModelArch(archName);
    QStringList otherHead;
    Value stateDict = fitted->stateDict;
    if (fileClasses && *fileClasses != classes && arch && !arch->headPrefix.isEmpty())
        stateDict = withoutHead(stateDict, arch->headPrefix, otherHead);
    QStringList mismatched;
    const QStringList copied = tm::copyMatching(net, stateDict, &mismatched);
    const ckpt::LoadReport &report = proposal.after;
    if (copied.isEmpty())
        return Error{
            QStringLiteral("no weight of “%1” fits a %2: %3").arg(path, archName, report.summary)};
    QString note = QStringLiteral("Weights from %1: %2 of %3 tensors loaded")
                       .arg(QFileInfo(path).fileName())
                       .arg(copied.size())
                       .arg(report.targetCount);
    if (!proposal.operations.isEmpty())
        note += QStringLiteral(" after %1").arg(proposal.summary);
    if (!otherHead.isEmpty())
        note += QStringLiteral("; the head was trained on other classes (%1), re-initialised: %2")
                    .arg(QLocale().createSeparatedList(fileClasses->mid(0, 4))
                             + (fileClasses->size() > 4 ? QStringLiteral(", …") : QString()),
                         otherHead.join(QStringLiteral(", ")));
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

double elapsedSeconds(const QElapsedTimer &timer)
{
    return double(timer.nsecsElapsed()) * 1e-9;
}

// ------------------------------------------------------------------------------------------------
// Controls

/// The controls of a run: set from any thread (Trainer's pause(), resume() and stop()), read by
/// the loop between batches.
class RunControl
{
public:
    void pause()
    {
        const std::lock_guard lock(m_mutex);
        m_paused = true;
    }
    void resume()
    {
        {
            const std::lock_guard lock(m_mutex);
            m_paused = false;
        }
        m_wake.notify_all();
    }
    bool isPaused() const
    {
        const std::lock_guard lock(m_mutex);
        return m_paused;
    }
    /// Ends the run after the current batch; with `save`, the exact position is saved first.
    void stop(bool save)
    {
        {
            const std::lock_guard lock(m_mutex);
            m_stopRequested = true;
            m_saveOnStop = m_saveOnStop || save;
            // The loader is cancelled only when nothing is to be saved: a save keeps the batch in
            // hand and stops right after it. Not in a data-parallel run, whose ranks stop
            // together after a step.
            if (m_activeLoader && !save && m_cancelsLoader)
                m_activeLoader->cancel();
        }
        m_wake.notify_all();
    }
    bool stopping() const
    {
        const std::lock_guard lock(m_mutex);
        return m_stopRequested;
    }
    /// nullopt while the run is to go on; after a stop, whether it asks for a save.
    std::optional<bool> stopRequest() const
    {
        const std::lock_guard lock(m_mutex);
        return m_stopRequested ? std::optional(m_saveOnStop) : std::nullopt;
    }
    /// Whether a validation under way is to be abandoned: after a stop without a save. "Save and
    /// stop" lets it finish, so that the epoch's checkpoint is written.
    bool abandonsValidation() const
    {
        const std::lock_guard lock(m_mutex);
        return m_stopRequested && !m_saveOnStop;
    }
    /// Blocks while paused, after calling `held`; returns the paused time in seconds.
    double waitWhilePaused(const std::function<void()> &held)
    {
        std::unique_lock lock(m_mutex);
        if (!m_paused || m_stopRequested)
            return 0.0;
        QElapsedTimer timer;
        timer.start();
        if (held) {
            lock.unlock(); // pause() and stop() may come meanwhile: the wait below sees them
            held();
            lock.lock();
        }
        m_wake.wait(lock, [this] { return !m_paused || m_stopRequested; });
        return elapsedSeconds(timer);
    }
    /// The loader that a stop without a save cancels (null: none).
    void setLoader(BatchLoader *loader)
    {
        const std::lock_guard lock(m_mutex);
        m_activeLoader = loader;
        if (loader && m_stopRequested && m_cancelsLoader)
            loader->cancel();
    }
    /// Off for a rank of a data-parallel run: a stop then waits for the ranks to agree.
    void setCancelsLoader(bool cancels)
    {
        const std::lock_guard lock(m_mutex);
        m_cancelsLoader = cancels;
    }

private:
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_paused = false;
    bool m_stopRequested = false;
    bool m_saveOnStop = false;
    bool m_cancelsLoader = true;
    BatchLoader *m_activeLoader = nullptr;
};

// ------------------------------------------------------------------------------------------------
// A run

/// One run of Trainer::run(), in named steps; train() reads as their table of contents. The
/// run's state lives in the members. A step that fails returns the error, which ends the run
/// with that message (failed()).
class TrainingRun
{
public:
    TrainingRun(RunControl &control, TrainConfig config, const TrainCallbacks &callbacks)
        : m_control(control)
        , m_callbacks(callbacks)
        , m_cfg(std::move(config))
    { }
    ~TrainingRun()
    {
        m_control.setLoader(nullptr); // before the loaders go
        if (m_threadsBefore > 0 && at::get_num_threads() != m_threadsBefore)
            at::set_num_threads(m_threadsBefore); // a resume's count was for this run only
        m_stepsFile.close();
        m_lock.release();
        for (const QString &folder : m_createdFolders)
            QDir().rmdir(folder); // only an empty one goes
    }
    TrainingRun(const TrainingRun &) = delete;
    TrainingRun &operator=(const TrainingRun &) = delete;

    TrainFinish train();
    /// The LR finder (lrfinder.h) on this run's preparation and training step.
    Result<LrFindResult> findLr(const LrFindOptions &options, const LrFindCallbacks &callbacks,
                                const std::atomic_bool *cancel);

private:
    /// Where the run is inside an epoch, with the epoch's sums so far: a checkpoint's
    /// 'progress' (all zero at the end of an epoch).
    struct EpochProgress
    {
        int batch = 0; ///< batches done in the epoch
        double lossSum = 0.0; ///< Σ loss × images
        qint64 correct = 0;
        qint64 seen = 0;
        double seconds = 0.0; ///< training time spent in the epoch
    };
    /// An epoch under way.
    struct EpochRun
    {
        int number = 1; ///< 1-based
        EpochProgress progress;
        double offset = 0.0; ///< seconds spent in it before a resume
        QElapsedTimer clock;
        double paused = 0.0;
        qint64 images = 0; ///< trained since this run entered the epoch

        double seconds() const { return offset + elapsedSeconds(clock) - paused; }
    };

    // prepare(): settings, the run folder's lock, device, data, model and optimizer, loaders,
    // schedule.
    Status prepare();
    void prepareRestart();
    Status lockRunFolder();
    Status readResumeSettings();
    Status prepareDevice();
    Status joinProcessGroup();
    Status checkSameRun();
    void prepareAmp();
    void noteResumeThreads(int before);
    Status prepareData();
    Status checkResumeClasses() const;
    Status prepareModel();
    Status loadPretrained();
    Status loadPretrainedOnce();
    Status prepareOptimizer();
    void applyFinetunePhase(int epoch);
    Status prepareLoaders();
    BatchLoaderOptions passOptions() const;
    void prepareBalancing(BatchLoaderOptions &trainOptions);
    void prepareSchedule();
    // restore(): the resumed checkpoint's weights, and for an exact resume its position.
    Status restore();
    Status restoreExactly();
    void restoreOtherWorldSize(int savedWorld);
    void restoreRngStates();
    Status syncModuleStates();
    // The run folder and the start.
    Status createRunFolder();
    Status writeRunFile(const QString &name, const QByteArray &bytes);
    Status writeMetricsCsv();
    Error writeFailed(const Error &error, const QString &kept) const;
    void announceStart();
    // The epochs.
    Status runEpoch(int number);
    Status prepareFeatureCaches();
    std::optional<tm::FeatureCache> buildFeatureCache(BatchLoader &loader, qsizetype samples,
                                                      const QString &what);
    EpochRun startEpoch(int number);
    Status trainBatches(EpochRun &epoch);
    /// A batch on the device: images, or the backbone's cached features.
    struct StepInput
    {
        torch::Tensor input;
        torch::Tensor labels;
        int count = 0;
        bool features = false;
    };
    std::optional<StepInput> nextStepInput(const EpochRun &epoch);
    std::pair<torch::Tensor, torch::Tensor> trainStep(const StepInput &in, double lr);
    struct StepFigures
    {
        double loss = 0.0;
        qint64 right = 0;
        int count = 0;
    };
    Result<StepFigures> globalFigures(StepFigures local);
    bool unscaleGradients();
    Status recordStep(EpochRun &epoch, double loss, qint64 right, int count, double lr);
    void reportStep(const EpochRun &epoch, double loss, double accuracy, double lr, int count);
    EpochReport trainingReport(const EpochRun &epoch) const;
    Status validate(EpochReport &report);
    Result<Evaluation> evaluateShard();
    double weightedValLoss(const Evaluation &evaluation) const;
    void updateEarlyStop(const EpochRecord &record);
    QString earlyStopSentence() const;
    // Checkpoints.
    Value makeCheckpoint(int epochsDone, const EpochProgress &progress) const;
    Value metricsValue() const;
    Status writeCheckpointFile(const QString &path, const Value &checkpoint);
    Status writeLastCheckpoint(const Value &checkpoint);
    Status saveMidEpochCheckpoint(const EpochRun &epoch);
    Status saveEpochCheckpoints(EpochReport &report);
    // The end.
    QList<LoaderFailure> newFailures(const QList<LoaderFailure> &failures);
    bool maxStepsReached() const { return m_cfg.maxSteps > 0 && m_step >= m_cfg.maxSteps; }
    TrainFinish finish();
    TrainFinish failed(const Error &error);
    TrainFinish stoppedBeforeStart();
    // The LR finder: a ramp of rates over the training step, the state restored after it.
    struct StateSnapshot
    {
        std::vector<torch::Tensor> tensors; ///< the model's state_dict() entries, cloned
        Value optimizer;
        at::Generator cpuGenerator;
        at::Generator cudaGenerator; ///< on CUDA only
        qint64 step = 0;
        double lossScale = 1.0;
        int goodSteps = 0;
    };
    Status runLrRamp(LrFinderCurve &curve, LrFindResult &result, const LrFindCallbacks &callbacks,
                     const std::atomic_bool *cancel);
    StateSnapshot snapshotState() const;
    void restoreState(const StateSnapshot &snapshot);

    /// This process's rank in a data-parallel run (0 for one process); only rank 0 writes to
    /// the run folder, and the LR finder writes nothing.
    int rank() const { return m_cfg.distributed ? m_cfg.distributed->rank : 0; }
    bool writes() const { return !m_findingLr && rank() == 0; }

    void status(const QString &text) const
    {
        if (m_callbacks.status)
            m_callbacks.status(text);
    }
    at::Generator cudaGenerator() const { return at::globalContext().defaultGenerator(m_device); }

    RunControl &m_control;
    const TrainCallbacks &m_callbacks;
    TrainConfig m_cfg; ///< as run: a resume's own settings
    TrainStart m_start; ///< notes gather here while the run is prepared
    TrainFinish m_finish;
    Value m_resumeRoot; ///< the checkpoint resumed from (none: not a dict)
    /// An exact resume's thread counts: the run's own (0: the checkpoint does not say) and the
    /// one this run asked for (0: none); -1 without an exact resume.
    int m_savedThreads = -1;
    int m_requestedThreads = 0;
    int m_threadsBefore = 0; ///< the calling thread's count before the run, restored after it
    bool m_stoppedBeforeStart = false;
    bool m_findingLr = false; ///< findLr(): no run folder, nothing written

    // A data-parallel run's process group, gradient averaging (rebuilt when the trained
    // parameters change), and its first failure inside a training step.
    std::unique_ptr<tm::DistributedGroup> m_group;
    std::unique_ptr<tm::GradientReducer> m_reducer;
    size_t m_reducedParams = 0;
    std::optional<Error> m_collectiveError;
    /// The stop every rank agreed on after a step (whether it saves): a rank acts on a stop
    /// only when all do, at the same step.
    std::optional<bool> m_agreedStop;
    std::vector<LoaderSample> m_valShard; ///< the validation images this rank evaluates
    std::vector<int> m_valShardIndex; ///< their positions in m_data.val

    // Device
    torch::Device m_device{torch::kCPU};
    bool m_cuda = false;
    bool m_channelsLast = false;
    bool m_amp = false; ///< autocast
    std::optional<AmpMode> m_savedAmp; ///< an exact resume's recorded mode
    torch::ScalarType m_ampType = torch::kBFloat16;
    double m_lossScale = 1.0; ///< fp16's dynamic loss scale
    int m_goodSteps = 0; ///< since the loss scale last changed

    // Data, model, optimizer, loaders, schedule
    TrainingData m_data;
    ResolvedPipelines m_pipelines;
    int m_numClasses = 0;
    std::shared_ptr<tm::Net> m_net;
    std::vector<torch::Tensor> m_params; ///< those the optimizer updates
    std::unique_ptr<Optimizer> m_optimizer;
    QString m_headPrefix; ///< ModelArch::headPrefix
    std::vector<torch::Tensor> m_frozen; ///< the backbone while it is frozen (else empty)
    std::unique_ptr<BatchLoader> m_trainLoader;
    std::unique_ptr<BatchLoader> m_valLoader; ///< null without validation images
    int m_batchesPerEpoch = 0;
    Schedule m_schedule;
    // The backbone's features while it is frozen (TrainConfig::cacheFeatures): the train set's
    // when its pipeline draws no random numbers, the validation set's always.
    std::optional<tm::FeatureCache> m_trainCache, m_valCache;
    bool m_cachesTried = false;
    std::vector<int> m_epochOrder; ///< the epoch's sample order, for the train cache
    torch::Tensor m_classWeights; ///< the loss's class weights (float32); undefined: none

    // Position and records
    int m_firstEpoch = 1;
    EpochProgress m_resumed; ///< inside m_firstEpoch, for an exact resume
    qint64 m_step = 0;
    int m_epochsDone = 0;
    double m_bestAccuracy = -1.0; ///< 0..1; -1 without validation yet
    QList<EpochRecord> m_history;
    QList<StepRecord> m_stepLog;
    bool m_stoppedEarly = false;
    /// Early stopping's state: the metric's best value, its epoch (0: none yet) and the epochs
    /// since it (kept in the checkpoints' metrics, so that an exact resume keeps counting).
    struct EarlyStop
    {
        double best = 0.0;
        int bestEpoch = 0;
        int badEpochs = 0;
    } m_early;

    // The run folder
    RunFolderLock m_lock; ///< held from prepare() to the end
    QStringList m_createdFolders; ///< made for the lock, removed when the run writes nothing
    QDir m_outDir;
    AppendFile m_stepsFile; ///< steps.csv, a row appended per step
    QString m_lastPath, m_bestPath;
    QJsonObject m_savedConfig; ///< the config that checkpoints hold
    QByteArray m_configJson;

    // Timing and reports
    QElapsedTimer m_clock;
    double m_pausedTotal = 0.0;
    double m_lastValSeconds = 0.0;
    std::deque<std::pair<double, qint64>> m_recent; // (time, images) for the speed average
    QSet<QString> m_reportedFailures;
};

TrainFinish TrainingRun::train()
{
    if (Status ok = prepare(); !ok)
        return failed(ok.error());
    if (m_stoppedBeforeStart)
        return stoppedBeforeStart();
    if (Status ok = restore(); !ok)
        return failed(ok.error());
    if (Status ok = syncModuleStates(); !ok)
        return failed(ok.error());
    // A stop asked for while the model or the loaders were prepared ends the run here too,
    // before it writes to the run folder (a folder made only for the lock goes again).
    if (m_control.stopping())
        return stoppedBeforeStart();
    if (Status ok = createRunFolder(); !ok)
        return failed(ok.error());
    announceStart();

    m_epochsDone = m_firstEpoch - 1;
    m_finish.bestValAccuracy = m_bestAccuracy;
    m_clock.start();
    for (int epoch = m_firstEpoch;
         epoch <= m_cfg.epochs && !m_stoppedEarly && !m_finish.earlyStopped; ++epoch) {
        if (Status ok = runEpoch(epoch); !ok)
            return failed(ok.error());
    }
    return finish();
}

// ------------------------------------------------------------------------------------------------
// prepare()

/// Settings, the run folder's lock, device, data, model and optimizer, loaders and schedule, in
/// this order. A stop while the dataset is scanned ends the preparation there
/// (m_stoppedBeforeStart); one after that ends the run before its folder is written (train()).
Status TrainingRun::prepare()
{
    Status ok = m_cfg.validate();
    if (ok)
        prepareRestart();
    if (ok && writes())
        ok = lockRunFolder();
    if (ok)
        ok = readResumeSettings();
    if (ok)
        ok = prepareDevice();
    if (ok)
        ok = prepareData();
    if (ok && m_group)
        ok = checkSameRun();
    if (!ok || m_stoppedBeforeStart)
        return ok;
    ok = prepareModel();
    if (!ok || m_stoppedBeforeStart) // stopped while pretrained weights downloaded
        return ok;
    ok = prepareLoaders();
    if (ok)
        prepareSchedule();
    return ok;
}

/// Creates the run folder when it is missing and locks it for this run, before anything else
/// is read or written: a second run on the folder is refused at once. Temporary files that an
/// interrupted write of ours left there go. Folders made here go again when the run ends
/// without writing to them (a failure while preparing).
Status TrainingRun::lockRunFolder()
{
    const QString folder = QDir(m_cfg.outDir).absolutePath();
    for (QString f = folder; !QFileInfo::exists(f); f = QFileInfo(f).absolutePath()) {
        m_createdFolders.append(f);
        if (QFileInfo(f).absolutePath() == f)
            break;
    }
    if (!QDir().mkpath(folder))
        return Error{QStringLiteral("cannot create the run folder “%1”").arg(m_cfg.outDir),
                     ErrorCode::Io};
    if (Status ok = m_lock.acquire(folder); !ok)
        return ok;
    if (const QString note = m_lock.takeOverNote(); !note.isEmpty())
        m_start.notes.append(note);
    if (const QStringList removed = removeStaleTemporaries(folder); !removed.isEmpty())
        m_start.notes.append(
            QStringLiteral("Removed %1 temporary file(s) left by an interrupted write: %2")
                .arg(removed.size())
                .arg(removed.join(QStringLiteral(", "))));
    return success();
}

/// A resume takes the run's settings from the checkpoint (except where to run and how many
/// epochs in all), so that the trajectory continues as it was.
Status TrainingRun::readResumeSettings()
{
    if (m_cfg.resumePath.isEmpty())
        return success();
    status(QStringLiteral("Reading %1…").arg(QFileInfo(m_cfg.resumePath).fileName()));
    auto file = ckpt::readCheckpoint(m_cfg.resumePath);
    if (!file)
        return file.error();
    m_resumeRoot = file->root;
    if (!m_resumeRoot.isDict() || !m_resumeRoot.contains(u"model_state_dict"))
        return Error{QStringLiteral("“%1” is not a training checkpoint (no 'model_state_dict'): "
                                    "use it as start-up weights (--weights) instead")
                         .arg(m_cfg.resumePath)};
    if (!m_cfg.resumeWeightsOnly) {
        if (auto saved = TrainConfig::fromJson(
                QJsonDocument::fromJson(m_resumeRoot.value(u"config_json").toString().toUtf8())
                    .object())) {
            m_savedThreads = saved->threads;
            m_requestedThreads = m_cfg.threads;
            if (saved->amp != AmpMode::Auto)
                m_savedAmp = saved->amp;
            m_cfg = exactResumeConfig(saved.value(), m_cfg);
        }
    }
    const QString arch = m_resumeRoot.value(u"arch").toString();
    if (!arch.isEmpty() && arch != m_cfg.arch) {
        m_start.notes.append(QStringLiteral("The checkpoint holds a %1: training that, not %2")
                                 .arg(arch, m_cfg.arch));
        m_cfg.arch = arch;
    }
    return success();
}

Status TrainingRun::prepareDevice()
{
    auto device = resolveDevice(m_cfg.device);
    if (!device)
        return device.error();
    // One GPU per local rank, as torchrun's users set torch.cuda.set_device(LOCAL_RANK).
    if (m_cfg.distributed && device->first.startsWith(u"cuda")) {
        if (m_cfg.device.contains(u':') && m_cfg.distributed->localWorldSize > 1)
            return Error{QStringLiteral("--device %1 with %2 processes on this machine: each "
                                        "process takes the GPU of its local rank; give --device "
                                        "cuda (or auto)")
                             .arg(m_cfg.device)
                             .arg(m_cfg.distributed->localWorldSize)};
        device->first = QStringLiteral("cuda:%1").arg(m_cfg.distributed->localRank);
    }
    m_start.device = device->first;
    m_start.deviceNote = device->second;
    m_device = torch::Device(device->first.toStdString());
    m_cuda = m_device.is_cuda();
    m_threadsBefore = at::get_num_threads();
    if (m_cfg.threads > 0)
        at::set_num_threads(m_cfg.threads);
    // The count in effect goes into config.json and the checkpoints: an exact resume restores it.
    m_cfg.threads = at::get_num_threads();
    noteResumeThreads(m_threadsBefore);
    if (m_cuda)
        at::globalContext().setBenchmarkCuDNN(true);
    prepareAmp();
    return m_cfg.distributed ? joinProcessGroup() : success();
}

/// A data-parallel run: joins the other ranks (c10d's store and process group), waiting for
/// all of them up to the timeout.
Status TrainingRun::joinProcessGroup()
{
    const DistEnv &env = *m_cfg.distributed;
    status(QStringLiteral("Rank %1: waiting for %2 processes at %3:%4…")
               .arg(env.rank)
               .arg(env.worldSize)
               .arg(env.masterAddr)
               .arg(env.masterPort));
    auto group = tm::DistributedGroup::connect(env, m_device);
    if (!group)
        return group.error();
    m_group = std::move(group).value();
    m_control.setCancelsLoader(false);
    m_start.rank = env.rank;
    m_start.worldSize = env.worldSize;
    return success();
}

/// Every rank must train the same settings on the same data: refused otherwise, naming the
/// first difference from rank 0's (what differs only by machine is left out).
Status TrainingRun::checkSameRun()
{
    QJsonObject run = m_cfg.toJson();
    // Paths may differ between machines (the data's content is compared instead; only rank
    // 0 writes; rank 0's start weights are broadcast), and so may the machine's resources.
    for (const char *key :
         {"threads", "workers", "device", "data", "val", "out", "weights", "resume", "maxSteps"})
        run.remove(QLatin1String(key));
    run.insert(QStringLiteral("dataset"), trainingDataFingerprint(m_data, m_cfg.dataRoot));
    // Every rank resumes from the same position (or none): a restart on a machine without the
    // run folder would otherwise start afresh beside the others.
    QJsonObject resumed;
    if (m_resumeRoot.isDict())
        resumed = {{QStringLiteral("epoch"), qint64(m_resumeRoot.value(u"epoch").toInt())},
                   {QStringLiteral("step"), qint64(m_resumeRoot.value(u"step").toInt())},
                   {QStringLiteral("batch"),
                    qint64(m_resumeRoot.value(u"progress").value(u"batch").toInt())}};
    run.insert(QStringLiteral("resumed_from"),
               m_resumeRoot.isDict() ? QJsonValue(resumed) : QJsonValue(QStringLiteral("nothing")));
    return tm::checkSameSettings(*m_group, run);
}

/// torchrun restarted the job (--max_restarts, a rank had failed): it continues from the run
/// folder's last.pth, as a resume asked for by the user would.
void TrainingRun::prepareRestart()
{
    // A restart continues from where the job got to, even when it was first started from
    // another checkpoint (--resume).
    if (!m_cfg.distributed || m_cfg.distributed->restartCount == 0)
        return;
    const QString last = QDir(m_cfg.outDir).filePath(QStringLiteral("last.pth"));
    if (!QFileInfo::exists(last))
        return;
    m_cfg.resumePath = last;
    m_cfg.resumeWeightsOnly = false;
    m_start.notes.append(QStringLiteral("torchrun restarted the job (restart %1): resuming from "
                                        "last.pth")
                             .arg(m_cfg.distributed->restartCount));
}

/// The mixed precision in effect (resolveAmp()), recorded in m_cfg for config.json and the
/// checkpoints; bf16 on the CPU brings channels_last, which oneDNN's bf16 kernels want.
void TrainingRun::prepareAmp()
{
    const AmpMode requested = m_cfg.amp;
    const AmpChoice amp = resolveAmp(requested, m_cfg.arch, m_cuda, cpuHasNativeBf16());
    m_cfg.amp = amp.mode;
    if (!amp.note.isEmpty())
        m_start.notes.append(amp.note);
    if (m_savedAmp && *m_savedAmp != amp.mode)
        m_start.notes.append(QStringLiteral("Warning: the run was trained with AMP %1, this "
                                            "resume computes with %2: the continuation is not "
                                            "bit-identical")
                                 .arg(ampName(*m_savedAmp), ampName(amp.mode)));
    m_amp = amp.mode != AmpMode::Off;
    m_ampType = amp.mode == AmpMode::Float16 ? torch::kHalf : torch::kBFloat16;
    m_lossScale = amp.mode == AmpMode::Float16 ? 65536.0 : 1.0;
    m_channelsLast = usesChannelsLast(m_cfg.memoryFormat, m_cuda)
        || (m_amp && !m_cuda && m_cfg.memoryFormat == MemoryFormat::Auto);
}

/// What an exact resume's thread count means for the continuation (see exactResumeConfig()):
/// restored (and other than this process's `before`), asked for otherwise, or not recorded.
void TrainingRun::noteResumeThreads(int before)
{
    if (m_savedThreads < 0 || m_cuda)
        return;
    const int threads = m_cfg.threads;
    if (m_savedThreads == 0)
        m_start.notes.append(
            QStringLiteral("The checkpoint does not record its compute threads: if it was "
                           "trained with another count than %1, the continuation is not "
                           "bit-identical (float sums round by thread count)")
                .arg(threads));
    else if (m_requestedThreads > 0 && m_requestedThreads != m_savedThreads)
        m_start.notes.append(
            QStringLiteral("Warning: %1 compute thread(s) asked for, the run was trained with %2: "
                           "the continuation is not bit-identical (float sums round by thread "
                           "count). Leave the thread count unset to continue exactly")
                .arg(m_requestedThreads)
                .arg(m_savedThreads));
    else if (threads != before)
        m_start.notes.append(QStringLiteral("%1 compute thread(s), as the run was trained (not "
                                            "%2): an exact continuation needs the same count")
                                 .arg(threads)
                                 .arg(before));
}

/// The samples and the pipelines, each pipeline tried on a first image.
Status TrainingRun::prepareData()
{
    status(QStringLiteral("Scanning the dataset…"));
    auto data = prepareTrainingData(m_cfg);
    if (!data)
        return data.error();
    m_data = std::move(data).value();
    if (m_control.stopping()) {
        m_stoppedBeforeStart = true;
        return success();
    }
    QString trainSource = m_cfg.trainTransforms;
    QString valSource = m_cfg.valTransforms;
    const QStringList pretrainedNotes
        = usePretrainedPipelines(m_cfg.arch, m_cfg.pretrained, trainSource, valSource);
    auto pipelines = resolvePipelines(trainSource, valSource, m_data.traits);
    if (!pipelines)
        return pipelines.error();
    m_pipelines = std::move(pipelines).value();
    m_pipelines.notes += pretrainedNotes;
    m_numClasses = int(m_data.classes.size());
    const Result<QSize> inputSize = checkPipelinesRun(m_pipelines, m_data, m_cfg.seed);
    if (!inputSize)
        return inputSize.error();
    if (const ModelArch *arch = findModelArch(m_cfg.arch)) {
        if (QString note = inputSizeNote(*arch, inputSize.value()); !note.isEmpty())
            m_start.advice.append(note);
    }
    return checkResumeClasses();
}

/// A resume needs the class indices to mean the same.
Status TrainingRun::checkResumeClasses() const
{
    if (!m_resumeRoot.isDict())
        return success();
    const std::optional<QStringList> saved
        = classesFromClassToIdx(m_resumeRoot.value(u"class_to_idx"));
    if (saved == m_data.classes)
        return success();
    return Error{QStringLiteral("the checkpoint was trained on other classes (%1) than this "
                                "dataset has (%2): resume needs the same classes")
                     .arg(saved ? saved->join(QStringLiteral(", "))
                                : QStringLiteral("no valid class_to_idx"),
                          m_data.classes.join(QStringLiteral(", ")))};
}

/// The model, seeded as `torch.manual_seed(seed)` before building it in Python, with the
/// start-up weights (not for a resume: restore() loads its own), on the device; the optimizer.
Status TrainingRun::prepareModel()
{
    torch::manual_seed(m_cfg.seed);
    auto net = tm::createNet(m_cfg.arch, m_numClasses);
    if (!net)
        return net.error();
    m_net = net.value();
    if (!m_cfg.weightsPath.isEmpty() && !m_resumeRoot.isDict()) {
        status(QStringLiteral("Loading weights from %1…")
                   .arg(QFileInfo(m_cfg.weightsPath).fileName()));
        auto note = loadStartWeights(*m_net, m_cfg.weightsPath, m_cfg.arch, m_data.classes);
        if (!note)
            return note.error();
        m_start.notes.append(note.value());
    }
    if (!m_cfg.pretrained.isEmpty() && !m_resumeRoot.isDict()) {
        if (Status ok = loadPretrainedOnce(); !ok || m_stoppedBeforeStart)
            return ok;
    }
    m_net->to(m_device);
    if (m_channelsLast)
        tm::setChannelsLast(*m_net, true);
    return prepareOptimizer();
}

/// The optimizer's parameter groups as fine-tuning wants them: one group of every parameter
/// (in model.parameters() order) for plain training; otherwise the head's group first and the
/// backbone's (at lr × backboneLrFactor) second, as
/// `SGD([{'params': head}, {'params': backbone, 'lr': lr * factor}])`. A frozen backbone has no
/// gradients and joins later (applyFinetunePhase(), as add_param_group()) or never.
Status TrainingRun::prepareOptimizer()
{
    const ModelArch *arch = findModelArch(m_cfg.arch);
    m_headPrefix = arch ? arch->headPrefix : QString();
    std::vector<torch::Tensor> all, head, backbone;
    for (auto &[name, p] : tm::parameterEntries(*m_net)) {
        all.push_back(p);
        (tm::isHeadName(name, m_headPrefix) ? head : backbone).push_back(p);
    }
    if (m_cfg.finetune == FinetuneMode::Full && m_cfg.backboneLrFactor == 1.0) {
        m_optimizer = std::make_unique<Optimizer>(m_cfg, std::vector{ParamGroup{all, 1.0}});
        m_params = m_optimizer->params();
        return success();
    }
    if (head.empty() || backbone.empty())
        return Error{QStringLiteral("cannot fine-tune %1: no parameters under its head “%2”")
                         .arg(m_cfg.arch, m_headPrefix)};
    std::vector<ParamGroup> groups{{head, 1.0}};
    const QString factor = m_cfg.backboneLrFactor == 1.0
        ? QString()
        : QStringLiteral(" at lr × %1").arg(m_cfg.backboneLrFactor);
    if (m_cfg.finetune == FinetuneMode::Full) {
        groups.push_back({backbone, m_cfg.backboneLrFactor});
        m_start.notes.append(QStringLiteral("Fine-tuning every layer, the backbone%1").arg(factor));
    } else {
        for (torch::Tensor &p : backbone)
            p.requires_grad_(false);
        m_frozen = backbone;
        m_start.notes.append(
            m_cfg.finetune == FinetuneMode::Head
                ? QStringLiteral("Fine-tuning the head (%1) only: the backbone is frozen, its "
                                 "BatchNorm and stochastic-depth layers in eval mode")
                      .arg(m_headPrefix)
                : QStringLiteral("Fine-tuning the head (%1) for %2 epoch(s), then every layer, "
                                 "the backbone%3")
                      .arg(m_headPrefix)
                      .arg(m_cfg.unfreezeEpoch)
                      .arg(factor));
    }
    m_optimizer = std::make_unique<Optimizer>(m_cfg, std::move(groups));
    m_params = m_optimizer->params();
    return success();
}

/// torchvision's weights for the architecture, from torch.hub's cache or downloaded into it
/// (progress on the status line; a stop cancels the download, which a later run resumes).
/// In a data-parallel run rank 0 finds (or downloads) the weights first and the others then read
/// them from torch.hub's cache: several processes never download the same file at once.
Status TrainingRun::loadPretrainedOnce()
{
    if (!m_group)
        return loadPretrained();
    // The other ranks take rank 0's weights when the run starts (syncModuleStates()): only rank
    // 0 reads the file, and only it may have to download it.
    const Status mine = m_group->rank() == 0 ? loadPretrained() : success();
    const double state = !mine ? 1.0 : m_stoppedBeforeStart ? 2.0 : 0.0;
    auto shared = m_group->sumOverRanks(
        {state},
        QStringLiteral("the wait for rank 0's pretrained weights (a download must finish within "
                       "--dist-timeout; `ifstudio-cli weights --fetch` fetches them beforehand)"));
    if (!shared)
        return shared.error();
    if (!mine)
        return mine;
    if (shared->front() == 1.0)
        return Error{QStringLiteral("rank 0 could not get the pretrained weights; its log says "
                                    "why")};
    m_stoppedBeforeStart = shared->front() == 2.0;
    return success();
}

Status TrainingRun::loadPretrained()
{
    auto weights = findPretrainedWeights(m_cfg.arch, m_cfg.pretrained);
    if (!weights)
        return weights.error();
    const PretrainedOptions options = PretrainedOptions::fromEnvironment();
    status(QStringLiteral("Looking for %1 in %2…")
               .arg(weights->fileName(), QDir::toNativeSeparators(options.cacheFolder())));
    DownloadCallbacks download;
    download.progress = [this, &weights](const DownloadProgress &progress) {
        status(QStringLiteral("Downloading %1: %2…")
                   .arg(weights->fileName(), downloadProgressText(progress)));
    };
    download.cancelled = [this] {
        return m_control.stopping();
    };
    auto path = ensurePretrainedWeights(weights.value(), options, download);
    if (!path && path.isCancellation() && m_control.stopping()) {
        m_stoppedBeforeStart = true;
        return success();
    }
    if (!path)
        return path.error();
    status(QStringLiteral("Loading weights from %1…").arg(weights->fileName()));
    QList<ckpt::Operation> renames;
    if (!weights->keyPattern.isEmpty())
        renames.append(ckpt::RenameRegex{weights->keyPattern, weights->keyReplacement});
    auto note = loadStartWeights(*m_net, path.value(), m_cfg.arch, m_data.classes, renames);
    if (!note)
        return note.error();
    m_start.notes.append(QStringLiteral("ImageNet weights %1 (torchvision's %2, top-1 %3%): %4")
                             .arg(weights->name, weights->fileName())
                             .arg(weights->top1, 0, 'f', 1)
                             .arg(note.value()));
    return success();
}

/// Head-then-full: from the epoch after unfreezeEpoch on, the backbone trains too, in a
/// parameter group of its own with fresh optimizer state (add_param_group()).
void TrainingRun::applyFinetunePhase(int epoch)
{
    if (m_frozen.empty() || m_cfg.finetune != FinetuneMode::HeadThenFull
        || epoch <= m_cfg.unfreezeEpoch)
        return;
    for (torch::Tensor &p : m_frozen)
        p.requires_grad_(true);
    m_optimizer->addGroup({m_frozen, m_cfg.backboneLrFactor});
    m_params = m_optimizer->params();
    m_frozen.clear();
    status(QStringLiteral("Epoch %1: the backbone is unfrozen, every layer trains").arg(epoch));
}

/// A loader that visits every image once in order (validation, the feature cache): not
/// shuffled, no batch dropped, batches of at least 128.
BatchLoaderOptions TrainingRun::passOptions() const
{
    BatchLoaderOptions options;
    options.batchSize = std::max(m_cfg.batchSize, 128);
    options.workers = m_cfg.workers;
    options.shuffle = false;
    options.seed = m_cfg.seed;
    return options;
}

Status TrainingRun::prepareLoaders()
{
    BatchLoaderOptions trainOptions;
    trainOptions.batchSize = m_cfg.batchSize;
    trainOptions.workers = m_cfg.workers;
    trainOptions.shuffle = true;
    trainOptions.seed = m_cfg.seed;
    qsizetype perRank = qsizetype(m_data.train.size());
    if (m_group) {
        // DistributedSampler's share of each rank; validation split the same way, unpadded.
        trainOptions.rank = m_group->rank();
        trainOptions.worldSize = m_group->size();
        perRank = (perRank + m_group->size() - 1) / m_group->size();
        m_valShardIndex
            = evaluationShard(qsizetype(m_data.val.size()), m_group->rank(), m_group->size());
        for (const int i : m_valShardIndex)
            m_valShard.push_back(m_data.val[size_t(i)]);
        if (!m_data.val.empty() && qsizetype(m_data.val.size()) < m_group->size())
            return Error{QStringLiteral("%1 validation images cannot be shared by %2 processes: "
                                        "use fewer processes or more validation images")
                             .arg(m_data.val.size())
                             .arg(m_group->size())};
    } else {
        m_valShard = m_data.val;
    }
    trainOptions.dropLast = m_cfg.dropLast && perRank >= m_cfg.batchSize;
    prepareBalancing(trainOptions);
    if (m_group && !trainOptions.sampleWeights.empty())
        return Error{QStringLiteral("the weighted sampler cannot split its draws over %1 "
                                    "processes (DistributedSampler has no weights): use the "
                                    "shuffling sampler with class-weighted loss instead")
                         .arg(m_group->size())};
    m_trainLoader = std::make_unique<BatchLoader>(m_data.train, m_pipelines.train, trainOptions);
    m_batchesPerEpoch = m_trainLoader->batchesPerEpoch();
    if (m_batchesPerEpoch == 0)
        return Error{QStringLiteral("no training batch: %1 images, batch size %2")
                         .arg(m_data.train.size())
                         .arg(m_cfg.batchSize)};
    if (!m_valShard.empty())
        m_valLoader = std::make_unique<BatchLoader>(m_valShard, m_pipelines.val, passOptions());
    if (Status ok = m_trainLoader->status(); !ok)
        return Error{QStringLiteral("no training batch: ") + ok.errorMessage()};
    if (Status ok = m_valLoader ? m_valLoader->status() : success(); !ok)
        return Error{QStringLiteral("no validation batch: ") + ok.errorMessage()};
    if (m_cfg.earlyStopping != EarlyStopMetric::Off && !m_valLoader)
        return Error{QStringLiteral("early stopping on %1 needs validation images: a val folder, "
                                    "or a validation split above 0")
                         .arg(earlyStopName(m_cfg.earlyStopping))};
    return success();
}

/// The training split's class counts give the loss's class weights (InverseFrequency, recorded
/// in m_cfg for config.json) and the weighted sampler's per-sample weights, 1 / n_class as
/// `[1.0 / counts[t] for t in targets]` in Python.
void TrainingRun::prepareBalancing(BatchLoaderOptions &trainOptions)
{
    std::vector<qint64> counts(size_t(m_numClasses), 0);
    for (const LoaderSample &sample : m_data.train) {
        if (sample.label >= 0 && sample.label < m_numClasses)
            ++counts[size_t(sample.label)];
    }
    m_cfg.classWeights.clear();
    if (m_cfg.classWeighting == ClassWeighting::InverseFrequency) {
        m_cfg.classWeights = balancedClassWeights(counts);
        m_classWeights = classWeightTensor(m_cfg.classWeights, m_device);
        QStringList shown;
        for (int c = 0; c < m_numClasses && c < 12; ++c)
            shown.append(QStringLiteral("%1 %2")
                             .arg(m_data.classes[c])
                             .arg(m_cfg.classWeights[size_t(c)], 0, 'g', 4));
        if (m_numClasses > 12)
            shown.append(QStringLiteral("… %1 more").arg(m_numClasses - 12));
        m_start.notes.append(QStringLiteral("Class-weighted loss (balanced: N / (C × n_c) over the "
                                            "training split; validation loss weighted too): %1")
                                 .arg(shown.join(QStringLiteral(", "))));
    }
    if (m_cfg.sampler == SamplerKind::Weighted) {
        trainOptions.sampleWeights.reserve(m_data.train.size());
        for (const LoaderSample &sample : m_data.train)
            trainOptions.sampleWeights.push_back(1.0 / double(counts[size_t(sample.label)]));
        m_start.notes.append(QStringLiteral("Weighted sampler: each epoch draws %1 training images "
                                            "with replacement, each class equally likely "
                                            "(WeightedRandomSampler)")
                                 .arg(m_data.train.size()));
    }
}

void TrainingRun::prepareSchedule()
{
    m_schedule.kind = m_cfg.schedule;
    m_schedule.baseLr = m_cfg.lr;
    m_schedule.stepsPerEpoch = m_batchesPerEpoch;
    m_schedule.totalSteps = qint64(m_batchesPerEpoch) * m_cfg.epochs;
    m_schedule.warmupSteps = m_cfg.schedule == ScheduleKind::OneCycle
        ? 0
        : qint64(std::llround(m_cfg.warmupEpochs * m_batchesPerEpoch));
    m_schedule.stepEpochs = m_cfg.stepEpochs;
    m_schedule.gamma = m_cfg.stepGamma;
}

// ------------------------------------------------------------------------------------------------
// restore()

/// The resumed checkpoint's weights (all of them must fit); for an exact resume also the
/// optimizer state, the position, the RNG states and the records (restoreExactly()).
Status TrainingRun::restore()
{
    if (!m_resumeRoot.isDict())
        return success();
    auto dict = ckpt::extractStateDict(m_resumeRoot);
    if (!dict)
        return dict.error();
    const QStringList copied = tm::copyMatching(*m_net, dict->tensors);
    const auto expected = tm::stateDictEntries(*m_net).size();
    if (size_t(copied.size()) != expected)
        return Error{QStringLiteral("the checkpoint's weights do not fit a %1 with %2 classes "
                                    "(%3 of %4 tensors fit)")
                         .arg(m_cfg.arch)
                         .arg(m_numClasses)
                         .arg(copied.size())
                         .arg(expected)};
    if (!m_cfg.resumeWeightsOnly)
        return restoreExactly();
    m_start.notes.append(QStringLiteral("Weights from %1 (epoch %2); new optimizer and schedule, "
                                        "epochs counted from 1")
                             .arg(QFileInfo(m_cfg.resumePath).fileName())
                             .arg(m_resumeRoot.value(u"epoch").toInt()));
    return success();
}

Status TrainingRun::restoreExactly()
{
    // The optimizer's groups as they were when the checkpoint was saved: inside epoch
    // `epoch` + 1 when it has a batch position, at the end of `epoch` otherwise.
    const qint64 savedEpoch = m_resumeRoot.value(u"epoch").toInt();
    applyFinetunePhase(int(
        m_resumeRoot.value(u"progress").value(u"batch").toInt() > 0 ? savedEpoch + 1 : savedEpoch));
    if (Status ok = m_optimizer->load(m_resumeRoot.value(u"optimizer_state_dict"), m_device); !ok)
        return Error{QStringLiteral("cannot resume exactly: %1").arg(ok.errorMessage())};
    const int epochsDone = int(m_resumeRoot.value(u"epoch").toInt());
    m_step = m_resumeRoot.value(u"step").toInt();
    const Value savedSplit = m_resumeRoot.value(u"distributed");
    const int savedWorld = savedSplit.isDict() ? int(savedSplit.value(u"world_size").toInt()) : 0;
    const int world = m_group ? m_group->size() : 0;
    const Value progress = m_resumeRoot.value(u"progress");
    m_resumed.batch = int(progress.value(u"batch").toInt());
    m_firstEpoch = epochsDone + 1;
    m_resumed.lossSum = progress.value(u"loss_sum").toDouble();
    m_resumed.correct = progress.value(u"correct").toInt();
    m_resumed.seen = progress.value(u"seen").toInt();
    m_resumed.seconds = progress.value(u"seconds").toDouble();
    restoreRngStates();
    const Value metrics = m_resumeRoot.value(u"metrics");
    m_bestAccuracy = metrics.contains(u"best_val_accuracy")
        ? metrics.value(u"best_val_accuracy").toDouble() / 100.0
        : -1.0;
    m_history = historyFromValue(metrics.value(u"history"));
    m_stepLog = stepLogFromValue(metrics.value(u"step_log"));
    if (savedWorld != world)
        restoreOtherWorldSize(savedWorld);
    if (const Value early = metrics.value(u"early_stopping");
        early.isDict() && early.value(u"metric").toString() == earlyStopName(m_cfg.earlyStopping))
        m_early = {early.value(u"best").toDouble(), int(early.value(u"best_epoch").toInt()),
                   int(early.value(u"bad_epochs").toInt())};
    m_start.notes.append(QStringLiteral("Resumed exactly from %1: epoch %2, step %3")
                             .arg(QFileInfo(m_cfg.resumePath).fileName())
                             .arg(m_firstEpoch)
                             .arg(m_step));
    return success();
}

/// A checkpoint saved with another number of processes (0: without torchrun): the weights,
/// the optimizer and the schedule's position continue, but batches hold other images, so an
/// epoch that was under way starts again from its first batch.
void TrainingRun::restoreOtherWorldSize(int savedWorld)
{
    const int world = m_group ? m_group->size() : 0;
    const auto processes = [](int n) {
        return n == 0 ? QStringLiteral("one process without torchrun")
                      : QStringLiteral("%1 process(es)").arg(n);
    };
    const qint64 globalBatch = qint64(m_cfg.batchSize) * std::max(1, world);
    QString note
        = QStringLiteral("%1 was saved by %2 and this run has %3: the weights and the "
                         "optimizer continue, and the schedule at epoch %4; batches now "
                         "hold %5 images in all and follow %3")
              .arg(QFileInfo(m_cfg.resumePath).fileName(), processes(savedWorld), processes(world))
              .arg(m_firstEpoch)
              .arg(globalBatch);
    const int epochsDone = m_firstEpoch - 1;
    if (m_resumed.batch > 0) {
        m_step -= m_resumed.batch;
        while (!m_stepLog.isEmpty() && m_stepLog.last().step > m_step)
            m_stepLog.removeLast();
        note += QStringLiteral(", starting epoch %1 again from its first batch").arg(m_firstEpoch);
        m_resumed = EpochProgress{};
    }
    // The steps counted in this run's batches per epoch, so that the schedule (and the step
    // log's positions) stand where epoch `epochsDone` ends for this split.
    const qint64 newStep = qint64(epochsDone) * m_batchesPerEpoch;
    if (m_step > 0 && newStep != m_step) {
        const double ratio = double(newStep) / double(m_step);
        for (StepRecord &r : m_stepLog)
            r.step = std::max<qint64>(1, std::llround(double(r.step) * ratio));
    }
    m_step = newStep;
    m_start.notes.append(note);
}

/// DDP's construction: every rank starts from rank 0's parameters and buffers.
Status TrainingRun::syncModuleStates()
{
    if (!m_group)
        return success();
    status(QStringLiteral("Rank %1: taking rank 0's weights…").arg(m_group->rank()));
    std::vector<torch::Tensor> states;
    for (const auto &p : m_net->parameters())
        states.push_back(p);
    for (const torch::Tensor &b : tm::bufferTensors(*m_net))
        states.push_back(b);
    if (Status ok = m_group->broadcast(states, QStringLiteral("the start weights' broadcast")); !ok)
        return ok;
    // Every rank draws its dropout from the same generator state, as ranks that seeded alike
    // and built alike do in Python (only rank 0 read pretrained weights, whose new head drew).
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    torch::Tensor state = cpu.get_state().to(m_device);
    if (Status ok = m_group->broadcast({state}, QStringLiteral("the generator's broadcast")); !ok)
        return ok;
    cpu.set_state(state.cpu());
    return success();
}

/// The CPU generator's state, and CUDA's (dropout draws from it) on CUDA; a checkpoint without
/// them leaves the seeded states.
void TrainingRun::restoreRngStates()
{
    const Value rng = m_resumeRoot.value(u"rng_state");
    if (rng.isTensor()) {
        auto state = tm::fromCheckpointTensor(rng.toTensor());
        if (state && state->scalar_type() == torch::kByte) {
            at::Generator generator = at::detail::getDefaultCPUGenerator();
            generator.set_state(state.value());
        }
    }
    const Value cudaRng = m_resumeRoot.value(u"cuda_rng_state");
    if (m_cuda && cudaRng.isTensor()) {
        auto state = tm::fromCheckpointTensor(cudaRng.toTensor());
        if (state && state->scalar_type() == torch::kByte)
            cudaGenerator().set_state(state.value());
    }
}

// ------------------------------------------------------------------------------------------------
// The run folder and the start

/// config.json, load_model.py, steps.csv (with a resumed run's steps) and metrics.csv.
Status TrainingRun::createRunFolder()
{
    m_outDir = QDir(m_cfg.outDir);
    if (!writes())
        return success(); // rank 0 writes the run folder
    if (!m_outDir.mkpath(QStringLiteral(".")))
        return Error{QStringLiteral("cannot create the run folder “%1”").arg(m_cfg.outDir)};
    m_createdFolders.clear(); // the run's files go there from now on
    if (Status ok
        = writeRunFile(QStringLiteral("config.json"), QJsonDocument(m_cfg.toJson()).toJson());
        !ok)
        return ok;
    // How to rebuild the model in Python (with SmallCNN's definition when it is ours).
    if (Status ok = writeRunFile(
            QStringLiteral("load_model.py"),
            modelPythonSnippet(m_cfg.arch, m_numClasses, QStringLiteral("last.pth")).toUtf8());
        !ok)
        return ok;
    // steps.csv is written whole here (with a resumed run's steps, as its checkpoint has them),
    // then grows by one row per step: a row is in the file as soon as the step is done, and a
    // failed append leaves the file at its last complete row.
    QByteArray steps = stepsCsvHeader();
    for (const StepRecord &s : m_stepLog)
        steps += stepsCsvRow(s);
    if (Status ok = writeRunFile(QStringLiteral("steps.csv"), steps); !ok)
        return ok;
    if (Status ok = m_stepsFile.open(m_outDir.filePath(QStringLiteral("steps.csv"))); !ok)
        return writeFailed(ok.error(), QStringLiteral("the file holds the steps before this run"));

    m_lastPath = m_outDir.filePath(QStringLiteral("last.pth"));
    m_bestPath = m_outDir.filePath(QStringLiteral("best.pth"));
    m_savedConfig = m_cfg.toJson();
    m_savedConfig.remove(QStringLiteral("resume"));
    m_savedConfig.remove(QStringLiteral("maxSteps"));
    m_configJson = QJsonDocument(m_savedConfig).toJson(QJsonDocument::Compact);
    return writeMetricsCsv();
}

/// Replaces the run folder's file `name` as a whole; a failure ends the run (writeFailed()).
Status TrainingRun::writeRunFile(const QString &name, const QByteArray &bytes)
{
    if (Status ok = writeFileAtomically(m_outDir.filePath(name), bytes); !ok)
        return writeFailed(ok.error(), QStringLiteral("the file is as it was before"));
    return success();
}

Status TrainingRun::writeMetricsCsv()
{
    return writeRunFile(QStringLiteral("metrics.csv"), metricsCsv(m_history));
}

/// A write in the run folder failed (a full disk, say): the run stops at once with the error,
/// what became of the file (`kept`) and what to do next.
Error TrainingRun::writeFailed(const Error &error, const QString &kept) const
{
    QString next = QStringLiteral("start the run again");
    if (!m_finish.lastCheckpoint.isEmpty())
        next = QStringLiteral("resume from “%1”")
                   .arg(QDir::toNativeSeparators(m_finish.lastCheckpoint));
    else if (!m_cfg.resumePath.isEmpty())
        next = QStringLiteral("resume from “%1” again")
                   .arg(QDir::toNativeSeparators(m_cfg.resumePath));
    return Error{QStringLiteral("%1. The run stopped there; %2. Check that disk (free space, "
                                "permissions) or choose another run folder, then %3.")
                     .arg(error.message, kept, next),
                 ErrorCode::Io};
}

/// Completes TrainStart and reports it.
void TrainingRun::announceStart()
{
    m_start.arch = m_cfg.arch;
    m_start.threads = at::get_num_threads();
    m_start.runtime
        = QStringLiteral("%1, %2%3%4")
              .arg(torchDescription())
              .arg(m_start.threads == 1 ? QStringLiteral("1 thread")
                                        : QStringLiteral("%1 threads").arg(m_start.threads))
              .arg(m_channelsLast ? QStringLiteral(", channels_last") : QString())
              .arg(m_amp ? QStringLiteral(", AMP %1").arg(ampName(m_cfg.amp)) : QString());
    m_start.classes = m_data.classes;
    m_start.trainSamples = qsizetype(m_data.train.size());
    m_start.valSamples = qsizetype(m_data.val.size());
    m_start.batchesPerEpoch = m_batchesPerEpoch;
    m_start.epochs = m_cfg.epochs;
    m_start.startEpoch = m_firstEpoch;
    m_start.startStep = m_step;
    m_start.inputPath = m_trainLoader->pathDescription();
    m_start.trainTransforms = m_pipelines.trainSource;
    m_start.valTransforms = m_pipelines.valSource;
    m_start.notes = m_data.notes + m_pipelines.notes + m_start.advice + m_start.notes;
    m_start.history.folder = m_cfg.outDir;
    m_start.history.name = m_outDir.dirName();
    m_start.history.epochs = m_history;
    m_start.history.steps = m_stepLog;
    if (m_group)
        m_start.distributed = QStringLiteral("%1 processes (%2) × %3 images = global batch %4")
                                  .arg(m_group->size())
                                  .arg(m_group->backendDescription())
                                  .arg(m_cfg.batchSize)
                                  .arg(qint64(m_group->size()) * m_cfg.batchSize);
    if (m_callbacks.started)
        m_callbacks.started(m_start);
}

// ------------------------------------------------------------------------------------------------
// The epochs

/// Epoch `number`: its batches and, when they ran to the end, the validation, the checkpoints
/// and the epoch's report. A stop that ends the run inside the epoch sets m_stoppedEarly.
Status TrainingRun::runEpoch(int number)
{
    applyFinetunePhase(number);
    if (m_group && m_reducedParams != m_params.size()) {
        // The trained parameters changed (an unfrozen backbone): buckets anew, as a new DDP
        // wrapper would make them.
        m_reducer = std::make_unique<tm::GradientReducer>(*m_group, m_params);
        m_reducedParams = m_params.size();
    }
    if (Status ok = prepareFeatureCaches(); !ok || m_stoppedEarly)
        return ok;
    m_net->train();
    if (!m_frozen.empty())
        tm::setFrozenBackboneEval(*m_net, m_headPrefix);
    m_control.setLoader(m_trainLoader.get());
    EpochRun epoch = startEpoch(number);
    Status trained = trainBatches(epoch);
    if (Status synced = writes() ? m_stepsFile.sync() : success(); trained && !synced)
        trained = writeFailed(synced.error(), QStringLiteral("it may lack the last steps"));
    if (!trained || m_stoppedEarly)
        return trained;
    if (epoch.progress.batch < m_batchesPerEpoch) {
        // The loader was cancelled (a stop while waiting for a batch).
        m_stoppedEarly = true;
        return success();
    }
    if (epoch.progress.seen == 0) {
        const QList<LoaderFailure> failures = m_trainLoader->failures();
        return Error{QStringLiteral("no training image could be loaded in epoch %1%2")
                         .arg(number)
                         .arg(failures.isEmpty()
                                  ? QString()
                                  : QStringLiteral(": “%1”: %2")
                                        .arg(failures.front().path, failures.front().message))};
    }

    EpochReport report = trainingReport(epoch);
    if (m_valLoader) {
        if (Status ok = validate(report); !ok || m_stoppedEarly)
            return ok;
    }
    report.record.seconds = elapsedSeconds(epoch.clock) - epoch.paused + epoch.offset;
    m_history.append(report.record);
    m_epochsDone = number;
    updateEarlyStop(report.record);
    if (Status ok = saveEpochCheckpoints(report); !ok)
        return ok;
    report.newFailures = newFailures(m_trainLoader->failures());
    if (m_trainCache)
        report.newFailures += newFailures(m_trainCache->failures());
    if (m_valLoader)
        report.newFailures += newFailures(m_valLoader->failures());
    m_finish.bestValAccuracy = m_bestAccuracy;
    if (m_callbacks.epoch)
        m_callbacks.epoch(report);
    const bool stopping = m_group ? m_agreedStop.has_value() : m_control.stopping();
    if (number < m_cfg.epochs && (stopping || maxStepsReached()))
        m_stoppedEarly = true;
    return success();
}

/// With the backbone frozen (head fine-tuning, or head-then-full before it unfreezes) and
/// TrainConfig::cacheFeatures, computes its features once: the validation set's, and the train
/// set's when its pipeline draws no random numbers (every epoch would see the same images).
/// Frees them when the backbone unfreezes. A cache that cannot be made (too big for memory)
/// leaves the run on images, saying why; a stop while they are computed ends the run.
Status TrainingRun::prepareFeatureCaches()
{
    if (m_frozen.empty()) {
        m_trainCache.reset();
        m_valCache.reset();
        return success();
    }
    if (m_cachesTried || !m_cfg.cacheFeatures)
        return success();
    m_cachesTried = true;
    if (!m_pipelines.train.isRandom()) {
        // Every image once, in a loader of its own: the training loader's epochs shuffle and
        // may drop a last partial batch, and a later epoch's order can hold any image.
        BatchLoader loader(m_data.train, m_pipelines.train, passOptions());
        if (Status ok = loader.status(); !ok)
            return Error{QStringLiteral("no training batch: ") + ok.errorMessage()};
        m_trainCache
            = buildFeatureCache(loader, qsizetype(m_data.train.size()), QStringLiteral("training"));
    } else {
        status(QStringLiteral("The training images' features are computed at every step: the "
                              "train transforms draw random numbers"));
    }
    if (!m_stoppedEarly && m_valLoader)
        m_valCache = buildFeatureCache(*m_valLoader, qsizetype(m_valShard.size()),
                                       QStringLiteral("validation"));
    return success();
}

/// One pass of `loader` (not shuffled, keeping every batch) through the frozen backbone; nullopt
/// (the run goes on with images) when the features would not fit in memory, and on a stop
/// (m_stoppedEarly).
std::optional<tm::FeatureCache>
TrainingRun::buildFeatureCache(BatchLoader &loader, qsizetype samples, const QString &what)
{
    QElapsedTimer clock;
    clock.start();
    tm::FeatureCache::Options options;
    options.device = m_device;
    options.channelsLast = m_channelsLast;
    options.amp = m_amp ? std::optional(m_ampType) : std::nullopt;
    options.maxBytes = availableMemoryBytes() / 4;
    options.cancelled = [this] {
        // A rank of a data-parallel run stops with the others, at a step (globalFigures()).
        return !m_group && m_control.stopping();
    };
    options.progress = [this, &what](qint64 done, qint64 total) {
        status(QStringLiteral("Computing the frozen backbone's features of the %1 images once: "
                              "%2 of %3…")
                   .arg(what)
                   .arg(done)
                   .arg(total));
    };
    m_control.setLoader(&loader);
    auto cache = tm::FeatureCache::build(*m_net, loader, samples, options);
    m_control.setLoader(nullptr);
    if (!cache) {
        if (cache.isCancellation() || m_control.stopping())
            m_stoppedEarly = true;
        else
            status(QStringLiteral("The %1 images' features are computed at every step: %2")
                       .arg(what, cache.errorMessage()));
        return std::nullopt;
    }
    status(QStringLiteral("The frozen backbone's features of %1 %2 images (%3) computed once in "
                          "%4 s")
               .arg(cache->size())
               .arg(what, formatBytes(cache->bytes()))
               .arg(elapsedSeconds(clock), 0, 'f', 1));
    return std::move(cache).value();
}

/// Enters epoch `number`; an exact resume continues its first epoch where it was saved.
TrainingRun::EpochRun TrainingRun::startEpoch(int number)
{
    const int skip = number == m_firstEpoch ? m_resumed.batch : 0;
    if (m_trainCache)
        m_epochOrder = m_trainLoader->epochOrder(number - 1); // no image is loaded
    else
        m_trainLoader->startEpoch(number - 1, skip);
    EpochRun epoch;
    epoch.number = number;
    if (skip) {
        epoch.progress = m_resumed;
        epoch.offset = m_resumed.seconds;
    }
    epoch.clock.start();
    return epoch;
}

/// The epoch's batches, each after any pause, until its end or a stop. Reaching maxSteps is a
/// "Save and stop"; a save inside the epoch writes last.pth with the exact position.
Status TrainingRun::trainBatches(EpochRun &epoch)
{
    while (epoch.progress.batch < m_batchesPerEpoch) {
        if (maxStepsReached()) {
            m_control.stop(/*save=*/true);
            m_agreedStop = true;
        }
        if (!m_group) { // the ranks of a data-parallel run do not pause
            const double pausedNow = m_control.waitWhilePaused(m_callbacks.held);
            epoch.paused += pausedNow;
            m_pausedTotal += pausedNow;
        }
        if (const std::optional<bool> save = m_group ? m_agreedStop : m_control.stopRequest()) {
            m_stoppedEarly = true;
            return *save && epoch.progress.batch > 0 ? saveMidEpochCheckpoint(epoch) : success();
        }
        const std::optional<StepInput> in = nextStepInput(epoch);
        if (!in)
            break; // cancelled
        if (in->count == 0 && !m_group) {
            ++epoch.progress.batch;
            continue;
        }
        const double lr = m_schedule.lr(m_step);
        const auto [logits, loss] = trainStep(*in, lr);
        if (m_collectiveError)
            return *m_collectiveError;
        ++m_step;
        ++epoch.progress.batch;
        StepFigures figures;
        if (in->count > 0)
            figures = {loss.item<double>(), logits.argmax(1).eq(in->labels).sum().item<int64_t>(),
                       in->count};
        if (m_group) {
            auto global = globalFigures(figures);
            if (!global)
                return global.error();
            figures = global.value();
        }
        if (Status ok = recordStep(epoch, figures.loss, figures.right, figures.count, lr); !ok)
            return ok;
    }
    return success();
}

/// A data-parallel step's figures over all ranks (the loss averaged over the images, the hits
/// and images summed), and the ranks' stop requests: when one asks to stop, all stop after
/// this step, with a save when one asked for it.
Result<TrainingRun::StepFigures> TrainingRun::globalFigures(StepFigures local)
{
    const std::optional<bool> stop = m_control.stopRequest();
    auto sums
        = m_group->sumOverRanks({local.loss * local.count, double(local.right), double(local.count),
                                 stop ? 1.0 : 0.0, stop && *stop ? 1.0 : 0.0},
                                QStringLiteral("the step's loss and accuracy"));
    if (!sums)
        return sums.error();
    const std::vector<double> &v = sums.value();
    if (v[3] > 0) {
        m_agreedStop = v[4] > 0;
        m_control.stop(v[4] > 0);
    }
    return StepFigures{v[2] > 0 ? v[0] / v[2] : 0.0, qint64(std::llround(v[1])),
                       int(std::llround(v[2]))};
}

/// The epoch's next batch: from the loader, or the cached features of the same samples in the
/// same order (the loader's epochOrder()). nullopt when the loader was cancelled.
std::optional<TrainingRun::StepInput> TrainingRun::nextStepInput(const EpochRun &epoch)
{
    StepInput in;
    if (m_trainCache) {
        const size_t batchSize = size_t(m_trainLoader->batchSize());
        const size_t first = size_t(epoch.progress.batch) * batchSize;
        tm::FeatureCache::Rows rows = m_trainCache->rows(m_epochOrder, first, first + batchSize);
        in.input = std::move(rows.features);
        in.labels = std::move(rows.labels);
        in.count = rows.count;
        in.features = true;
        return in;
    }
    std::optional<Batch> batch = m_trainLoader->next();
    if (!batch)
        return std::nullopt;
    in.count = batch->count;
    if (in.count > 0) {
        in.input = tm::batchToDevice(*batch, m_device, m_channelsLast);
        in.labels = tm::batchLabels(*batch, m_device);
    }
    m_trainLoader->recycle(std::move(*batch));
    return in;
}

/// One optimizer step at rate `lr`: forward, loss, backward and update. With fp16's loss scale,
/// a step whose gradients overflowed is skipped and the scale halved. Returns logits and loss.
std::pair<torch::Tensor, torch::Tensor> TrainingRun::trainStep(const StepInput &in, double lr)
{
    // A rank of a data-parallel run whose batch held no loadable image still takes part in the
    // step's exchanges, with zero gradients, so that every rank takes the same update.
    const bool empty = in.count == 0;
    m_optimizer->zeroGrad();
    torch::Tensor logits;
    torch::Tensor loss;
    {
        // The forward pass under autocast; the loss in float32 on its output, the backward
        // outside, as a Python loop with torch.autocast does.
        tm::AutocastScope autocast(m_amp, m_ampType, m_device.type());
        // DDP's broadcast_buffers: each training forward starts from rank 0's buffers.
        if (m_group) {
            if (Status ok = m_group->broadcast(tm::bufferTensors(*m_net),
                                               QStringLiteral("the buffers' broadcast"));
                !ok) {
                m_collectiveError = ok.error();
                return {torch::Tensor(), torch::Tensor()};
            }
        }
        if (!empty)
            logits = in.features ? m_net->headForward(in.input) : m_net->forward(in.input);
    }
    if (!empty) {
        loss = crossEntropy(logits.to(torch::kFloat), in.labels, m_classWeights,
                            m_cfg.labelSmoothing);
        (m_lossScale != 1.0 ? loss * m_lossScale : loss).backward();
    }
    // DDP averages the gradients as backward() makes them, before anything reads them.
    if (m_reducer) {
        if (Status ok = m_reducer->reduce(); !ok) {
            m_collectiveError = ok.error();
            return {logits, loss};
        }
    }
    const bool finite = m_lossScale == 1.0 || unscaleGradients();
    if (finite && m_cfg.gradClipNorm > 0.0)
        torch::nn::utils::clip_grad_norm_(m_params, m_cfg.gradClipNorm);
    if (finite) {
        m_optimizer->step(lr, m_schedule.momentum(m_step));
        if (m_lossScale != 1.0 && ++m_goodSteps >= 2000) {
            m_lossScale *= 2.0;
            m_goodSteps = 0;
        }
    } else {
        m_lossScale /= 2.0;
        m_goodSteps = 0;
    }
    return {logits, loss};
}

/// Divides the gradients by the loss scale; returns whether they are all finite.
bool TrainingRun::unscaleGradients()
{
    torch::NoGradGuard noGrad;
    for (torch::Tensor &p : m_params) {
        if (p.grad().defined())
            p.mutable_grad().mul_(1.0 / m_lossScale);
    }
    std::vector<torch::Tensor> norms;
    for (torch::Tensor &p : m_params) {
        if (p.grad().defined())
            norms.push_back(p.grad().abs().max());
    }
    return norms.empty() || torch::stack(norms).isfinite().all().item<bool>();
}

/// Adds a step to the epoch's sums, the step log and steps.csv, and reports it. A row that
/// cannot be written ends the run before the step is reported.
Status TrainingRun::recordStep(EpochRun &epoch, double loss, qint64 right, int count, double lr)
{
    epoch.progress.lossSum += loss * count;
    epoch.progress.correct += right;
    epoch.progress.seen += count;
    epoch.images += count;
    m_stepLog.append({m_step, epoch.number, loss, lr});
    if (Status ok = writes() ? m_stepsFile.append(stepsCsvRow(m_stepLog.last())) : success(); !ok)
        return writeFailed(ok.error(), QStringLiteral("it ends with its last complete row"));
    reportStep(epoch, loss, count > 0 ? double(right) / double(count) : 0.0, lr, count);
    return success();
}

/// StepProgress, with the speed of the last 50 steps and the time left.
void TrainingRun::reportStep(const EpochRun &epoch, double loss, double accuracy, double lr,
                             int count)
{
    const double now = elapsedSeconds(m_clock) - m_pausedTotal;
    m_recent.emplace_back(now, count);
    while (m_recent.size() > 50)
        m_recent.pop_front();
    qint64 recentImages = 0;
    for (size_t i = 1; i < m_recent.size(); ++i)
        recentImages += m_recent[i].second;
    const double span = m_recent.back().first - m_recent.front().first;
    StepProgress progress;
    progress.epoch = epoch.number;
    progress.batch = epoch.progress.batch;
    progress.batches = m_batchesPerEpoch;
    progress.step = m_step;
    progress.totalSteps = m_schedule.totalSteps;
    progress.loss = loss;
    progress.accuracy = accuracy;
    progress.lr = lr;
    progress.imagesPerSecond = span > 0 ? double(recentImages) / span : 0.0;
    if (span > 0 && m_recent.size() > 3) {
        const double perStep = span / double(m_recent.size() - 1);
        progress.etaSeconds = perStep * double(m_schedule.totalSteps - m_step)
            + m_lastValSeconds * double(m_cfg.epochs - epoch.number + 1);
    }
    if (m_callbacks.step)
        m_callbacks.step(progress);
}

/// The report of an epoch whose batches are done, with its training figures.
EpochReport TrainingRun::trainingReport(const EpochRun &epoch) const
{
    EpochReport report;
    EpochRecord &record = report.record;
    const EpochProgress &p = epoch.progress;
    record.epoch = epoch.number;
    record.step = m_step;
    record.trainLoss = p.seen ? p.lossSum / double(p.seen) : 0.0;
    record.trainAccuracy = p.seen ? double(p.correct) / double(p.seen) : 0.0;
    record.lr = m_schedule.lr(std::max<qint64>(0, m_step - 1));
    const double trainSeconds = epoch.seconds();
    record.imagesPerSecond
        = trainSeconds > 0 ? double(epoch.images) / (trainSeconds - epoch.offset) : 0.0;
    return report;
}

/// Evaluates the model on the validation set into `report`. A stop without a save abandons it
/// and ends the run (m_stoppedEarly).
Status TrainingRun::validate(EpochReport &report)
{
    status(QStringLiteral("Validating epoch %1…").arg(report.record.epoch));
    QElapsedTimer clock;
    clock.start();
    m_control.setLoader(m_valLoader.get());
    auto evaluation = evaluateShard();
    m_control.setLoader(nullptr);
    m_lastValSeconds = elapsedSeconds(clock);
    if (!evaluation) {
        if (m_control.stopping()) {
            m_stoppedEarly = true;
            return success();
        }
        return evaluation.error();
    }
    report.record.valLoss
        = m_classWeights.defined() ? weightedValLoss(evaluation.value()) : evaluation->loss;
    report.record.valAccuracy = evaluation->accuracy;
    report.evaluation = std::make_shared<const Evaluation>(std::move(evaluation).value());
    return success();
}

/// The validation set's evaluation; in a data-parallel run each rank evaluates its share and
/// every rank gets the whole evaluation, so that all take the same decisions (best, early
/// stopping). DDP's first forward without gradients syncs the buffers first.
Result<Evaluation> TrainingRun::evaluateShard()
{
    const std::optional<torch::ScalarType> amp = m_amp ? std::optional(m_ampType) : std::nullopt;
    // A rank leaves a validation only with all the others: not on its own stop.
    const auto abandoned = [this] {
        return !m_group && m_control.abandonsValidation();
    };
    if (m_group) {
        if (Status ok = m_group->broadcast(tm::bufferTensors(*m_net),
                                           QStringLiteral("the buffers' broadcast"));
            !ok)
            return ok.error();
    }
    auto evaluation = m_valCache
        ? tm::evaluateFeatures(*m_net, *m_valCache, m_valShard, m_data.classes, amp, abandoned)
        : tm::evaluateNet(*m_net, *m_valLoader, m_valShard, m_data.classes, m_device,
                          m_channelsLast, amp, abandoned);
    if (!evaluation || !m_group)
        return evaluation;
    return tm::gatherEvaluation(*m_group, evaluation.value(), m_valShardIndex, m_data.val);
}

/// The validation loss with class weights: Σ w[y] · loss / Σ w[y] over the images, as
/// nn.CrossEntropyLoss(weight=w) without label smoothing (the unweighted one has none either).
double TrainingRun::weightedValLoss(const Evaluation &evaluation) const
{
    double sum = 0.0, weights = 0.0;
    for (const SamplePrediction &p : evaluation.predictions) {
        const double w = m_cfg.classWeights[size_t(p.label)];
        sum += w * double(p.loss);
        weights += w;
    }
    return weights > 0.0 ? sum / weights : evaluation.loss;
}

/// Early stopping after an epoch's validation: an improvement is a value better than the best
/// so far by more than minDelta (the first epoch always is); after `patience` epochs without
/// one, the run ends (a completed run) unless this was its last epoch anyway.
void TrainingRun::updateEarlyStop(const EpochRecord &record)
{
    if (m_cfg.earlyStopping == EarlyStopMetric::Off || !m_valLoader)
        return;
    const bool loss = m_cfg.earlyStopping == EarlyStopMetric::ValLoss;
    const double value = loss ? record.valLoss : record.valAccuracy;
    const bool improved = m_early.bestEpoch == 0
        || (loss ? value < m_early.best - m_cfg.minDelta : value > m_early.best + m_cfg.minDelta);
    if (improved) {
        m_early = {value, record.epoch, 0};
        return;
    }
    ++m_early.badEpochs;
    if (m_early.badEpochs >= m_cfg.patience && record.epoch < m_cfg.epochs)
        m_finish.earlyStopped = true;
}

/// Why early stopping ended the run, for the finish message.
QString TrainingRun::earlyStopSentence() const
{
    const bool loss = m_cfg.earlyStopping == EarlyStopMetric::ValLoss;
    return QStringLiteral(" Early stopping: the validation %1 did not improve%2 for %3 epoch(s); "
                          "best %4 at epoch %5.")
        .arg(loss ? QStringLiteral("loss") : QStringLiteral("accuracy"))
        .arg(m_cfg.minDelta > 0.0 ? QStringLiteral(" by more than %1").arg(m_cfg.minDelta)
                                  : QString())
        .arg(m_early.badEpochs)
        .arg(loss ? QString::number(m_early.best, 'f', 4)
                  : QStringLiteral("%1%").arg(percent(m_early.best)))
        .arg(m_early.bestEpoch);
}

// ------------------------------------------------------------------------------------------------
// Checkpoints

/// The checkpoint after `epochsDone` complete epochs and, for a save inside the next one,
/// `progress` in it (progress.batch > 0, with the partial epoch's sums).
Value TrainingRun::makeCheckpoint(int epochsDone, const EpochProgress &progress) const
{
    Value::Entries classToIdx;
    for (int i = 0; i < m_numClasses; ++i)
        classToIdx.append({Value(m_data.classes[i]), Value(i)});
    const torch::Tensor rng = at::detail::getDefaultCPUGenerator().get_state();
    Value root = Value::dict({
        {Value(QStringLiteral("model_state_dict")), tm::stateDictValue(*m_net)},
        {Value(QStringLiteral("optimizer_state_dict")), m_optimizer->stateDict()},
        {Value(QStringLiteral("scheduler_state_dict")),
         m_schedule.stateDict(m_step, m_optimizer->lrFactors())},
        {Value(QStringLiteral("epoch")), Value(epochsDone)},
        {Value(QStringLiteral("step")), Value(m_step)},
        {Value(QStringLiteral("class_to_idx")), Value::dict(std::move(classToIdx))},
        {Value(QStringLiteral("arch")), Value(m_cfg.arch)},
        {Value(QStringLiteral("num_classes")), Value(m_numClasses)},
        {Value(QStringLiteral("transforms")),
         Value::dict({{Value(QStringLiteral("train")), Value(m_pipelines.trainSource)},
                      {Value(QStringLiteral("val")), Value(m_pipelines.valSource)}})},
        {Value(QStringLiteral("metrics")), metricsValue()},
        {Value(QStringLiteral("progress")),
         Value::dict({{Value(QStringLiteral("batch")), Value(progress.batch)},
                      {Value(QStringLiteral("loss_sum")), Value(progress.lossSum)},
                      {Value(QStringLiteral("correct")), Value(progress.correct)},
                      {Value(QStringLiteral("seen")), Value(progress.seen)},
                      {Value(QStringLiteral("seconds")), Value(progress.seconds)}})},
        {Value(QStringLiteral("rng_state")), Value(tm::toCheckpointTensor(rng))},
        {Value(QStringLiteral("seed")), Value(QString::number(m_cfg.seed))},
        {Value(QStringLiteral("config")), jsonToValue(m_savedConfig)},
        {Value(QStringLiteral("config_json")), Value(QString::fromUtf8(m_configJson))},
        {Value(QStringLiteral("app")), Value(QStringLiteral("ImageFolder Studio"))},
    });
    if (m_group) // how the run was split: a resume with another world size says so
        root.insert(
            Value(QStringLiteral("distributed")),
            Value::dict(
                {{Value(QStringLiteral("world_size")), Value(m_group->size())},
                 {Value(QStringLiteral("per_rank_batch")), Value(m_cfg.batchSize)},
                 {Value(QStringLiteral("sampler")), Value(QStringLiteral("DistributedSampler"))},
                 {Value(QStringLiteral("backend")), Value(m_group->backendDescription())}}));
    if (m_cuda) // torch.cuda.get_rng_state(): dropout draws from it
        root.insert(Value(QStringLiteral("cuda_rng_state")),
                    Value(tm::toCheckpointTensor(cudaGenerator().get_state())));
    return root;
}

/// A checkpoint's 'metrics': the history, the last epoch's figures, the best validation
/// accuracy (percent) and the step log.
Value TrainingRun::metricsValue() const
{
    Value::Entries metrics;
    metrics.append({Value(QStringLiteral("history")), historyToValue(m_history)});
    if (!m_history.isEmpty()) {
        const EpochRecord &last = m_history.last();
        metrics.append({Value(QStringLiteral("train_loss")), Value(last.trainLoss)});
        metrics.append({Value(QStringLiteral("train_acc")), Value(last.trainAccuracy * 100.0)});
        if (m_valLoader) {
            metrics.append({Value(QStringLiteral("val_loss")), Value(last.valLoss)});
            metrics.append({Value(QStringLiteral("val_acc")), Value(last.valAccuracy * 100.0)});
        }
    }
    if (m_bestAccuracy >= 0.0)
        metrics.append({Value(QStringLiteral("best_val_accuracy")), Value(m_bestAccuracy * 100.0)});
    metrics.append({Value(QStringLiteral("step_log")), stepLogToValue(m_stepLog)});
    if (m_cfg.earlyStopping != EarlyStopMetric::Off && m_early.bestEpoch > 0)
        metrics.append(
            {Value(QStringLiteral("early_stopping")),
             Value::dict(
                 {{Value(QStringLiteral("metric")), Value(earlyStopName(m_cfg.earlyStopping))},
                  {Value(QStringLiteral("best")), Value(m_early.best)},
                  {Value(QStringLiteral("best_epoch")), Value(m_early.bestEpoch)},
                  {Value(QStringLiteral("bad_epochs")), Value(m_early.badEpochs)}})});
    return Value::dict(std::move(metrics));
}

/// Writes a checkpoint of the run; a failure ends the run (the file keeps its previous
/// version: the writer replaces it atomically).
Status TrainingRun::writeCheckpointFile(const QString &path, const Value &checkpoint)
{
    if (Status ok = ckpt::writeCheckpoint(path, checkpoint); !ok)
        return writeFailed(ok.error(), QStringLiteral("the file is as it was before"));
    return success();
}

Status TrainingRun::writeLastCheckpoint(const Value &checkpoint)
{
    const Status ok = writeCheckpointFile(m_lastPath, checkpoint);
    if (ok)
        m_finish.lastCheckpoint = m_lastPath;
    return ok;
}

/// "Save and stop" inside an epoch: last.pth with the exact position, from which a resume
/// continues with the next batch.
Status TrainingRun::saveMidEpochCheckpoint(const EpochRun &epoch)
{
    if (!writes())
        return success();
    status(QStringLiteral("Saving last.pth…"));
    EpochProgress progress = epoch.progress;
    progress.seconds = epoch.seconds();
    return writeLastCheckpoint(makeCheckpoint(epoch.number - 1, progress));
}

/// last.pth, best.pth when the epoch is the best so far, epoch_NNN.pth when it is due, and
/// metrics.csv, with the paths in `report`.
Status TrainingRun::saveEpochCheckpoints(EpochReport &report)
{
    const int epoch = report.record.epoch;
    status(QStringLiteral("Saving checkpoints…"));
    report.best = m_valLoader && report.record.valAccuracy > m_bestAccuracy;
    if (report.best)
        m_bestAccuracy = report.record.valAccuracy;
    if (!writes())
        return success();
    const Value checkpoint = makeCheckpoint(epoch, EpochProgress{});
    if (Status ok = writeLastCheckpoint(checkpoint); !ok)
        return ok;
    report.lastCheckpoint = m_lastPath;
    if (report.best) {
        if (Status ok = writeCheckpointFile(m_bestPath, checkpoint); !ok)
            return ok;
        m_finish.bestCheckpoint = m_bestPath;
    }
    if (QFileInfo::exists(m_bestPath))
        report.bestCheckpoint = m_bestPath;
    if (m_cfg.saveEveryEpochs > 0 && epoch % m_cfg.saveEveryEpochs == 0) {
        const QString path
            = m_outDir.filePath(QStringLiteral("epoch_%1.pth").arg(epoch, 3, 10, QChar(u'0')));
        if (Status ok = writeCheckpointFile(path, checkpoint); !ok)
            return ok;
    }
    return writeMetricsCsv();
}

// ------------------------------------------------------------------------------------------------
// The end

/// The loader's failures not reported yet; each also goes to TrainFinish::skippedImages.
QList<LoaderFailure> TrainingRun::newFailures(const QList<LoaderFailure> &failures)
{
    QList<LoaderFailure> fresh;
    for (const LoaderFailure &f : failures) {
        if (!m_reportedFailures.contains(f.path)) {
            m_reportedFailures.insert(f.path);
            fresh.append(f);
            m_finish.skippedImages.append(f);
        }
    }
    return fresh;
}

TrainFinish TrainingRun::finish()
{
    newFailures(m_trainLoader->failures());
    if (m_valLoader)
        newFailures(m_valLoader->failures());
    m_finish.epochsDone = m_epochsDone;
    m_finish.steps = m_step;
    m_finish.bestValAccuracy = m_bestAccuracy;
    if (m_finish.bestCheckpoint.isEmpty() && QFileInfo::exists(m_bestPath))
        m_finish.bestCheckpoint = m_bestPath;
    if (m_finish.lastCheckpoint.isEmpty() && QFileInfo::exists(m_lastPath)
        && m_epochsDone >= m_firstEpoch)
        m_finish.lastCheckpoint = m_lastPath;
    const QString skipped = m_finish.skippedImages.isEmpty()
        ? QString()
        : QStringLiteral(" %1 unreadable image(s) were skipped.")
              .arg(m_finish.skippedImages.size());
    const QString best = m_bestAccuracy >= 0.0
        ? QStringLiteral(", best validation accuracy %1%").arg(percent(m_bestAccuracy))
        : QString();
    if (m_stoppedEarly) {
        m_finish.outcome = TrainOutcome::Stopped;
        m_finish.message = QStringLiteral("Stopped after %1 complete epoch(s), step %2%3.%4")
                               .arg(m_epochsDone)
                               .arg(m_step)
                               .arg(best, skipped);
    } else {
        m_finish.outcome = TrainOutcome::Completed;
        m_finish.message
            = QStringLiteral("Trained %1 epoch(s) in %2 s%3.%4%5")
                  .arg(m_epochsDone)
                  .arg(elapsedSeconds(m_clock) - m_pausedTotal, 0, 'f', 1)
                  .arg(best, m_finish.earlyStopped ? earlyStopSentence() : QString(), skipped);
    }
    return m_finish;
}

TrainFinish TrainingRun::failed(const Error &error)
{
    m_finish.outcome = TrainOutcome::Failed;
    m_finish.message = error.message;
    return m_finish;
}

TrainFinish TrainingRun::stoppedBeforeStart()
{
    m_finish.outcome = TrainOutcome::Stopped;
    m_finish.message = QStringLiteral("Stopped before the first batch");
    return m_finish;
}

// ------------------------------------------------------------------------------------------------
// The LR finder

/// Prepares as a training run does (without a run folder), then ramps the rate over the training
/// step (runLrRamp()) and restores the model, the optimizer and torch's generator.
Result<LrFindResult> TrainingRun::findLr(const LrFindOptions &options,
                                         const LrFindCallbacks &callbacks,
                                         const std::atomic_bool *cancel)
{
    if (Status ok = options.validate(); !ok)
        return ok.error();
    m_findingLr = true;
    if (Status ok = prepare(); !ok)
        return ok.error();
    auto cancelled = [&] {
        return Error{QStringLiteral("the LR finder was cancelled"), ErrorCode::Cancelled};
    };
    if (m_stoppedBeforeStart || m_control.stopping() || (cancel && cancel->load()))
        return cancelled();
    // The rate is the ramp's; the momentum stays as configured (no OneCycle cycling).
    m_schedule.kind = ScheduleKind::Constant;
    announceStart();
    LrFinderCurve curve(options);
    LrFindResult result;
    result.start = m_start;
    result.iterations = curve.iterations();
    const StateSnapshot before = snapshotState();
    const Status ramp = runLrRamp(curve, result, callbacks, cancel);
    restoreState(before);
    if (!ramp)
        return ramp.error();
    if (!options.saveModelTo.isEmpty()) {
        if (Status ok = ckpt::writeCheckpoint(options.saveModelTo, tm::stateDictValue(*m_net)); !ok)
            return ok.error();
    }
    result.lrs = curve.lrs();
    result.losses = curve.losses();
    result.smoothed = curve.smoothed();
    result.stop = curve.stop();
    result.suggestions = curve.suggestions();
    const qsizetype last = result.lrs.size();
    result.stopMessage = result.stop == LrFindStop::Diverged
        ? QStringLiteral("Stopped at step %1 of %2 (lr %3): the smoothed loss %4 exceeded 4 × its "
                         "best")
              .arg(last)
              .arg(result.iterations)
              .arg(result.lrs.last(), 0, 'g', 3)
              .arg(result.smoothed.last(), 0, 'g', 4)
        : result.stop == LrFindStop::NotFinite
        ? QStringLiteral("Stopped at step %1 of %2 (lr %3): the loss is not a number")
              .arg(last)
              .arg(result.iterations)
              .arg(result.lrs.last(), 0, 'g', 3)
        : QStringLiteral("Ran all %1 steps up to lr %2")
              .arg(last)
              .arg(result.lrs.last(), 0, 'g', 3);
    if (result.suggestions.isEmpty())
        result.stopMessage += QStringLiteral("; too few steps for a suggestion");
    return result;
}

/// The ramp: the training loader's epochs in order, one training step per batch at the ramp's
/// rate, until the curve stops it.
Status TrainingRun::runLrRamp(LrFinderCurve &curve, LrFindResult &result,
                              const LrFindCallbacks &callbacks, const std::atomic_bool *cancel)
{
    m_net->train();
    if (!m_frozen.empty())
        tm::setFrozenBackboneEval(*m_net, m_headPrefix);
    // The ramp's draws (dropout, stochastic depth) start from the run's seed, whatever building
    // the model drew: a replay of the ramp needs no more than the seed (restoreState() puts the
    // generator back).
    torch::manual_seed(m_cfg.seed);
    int epoch = 0;
    bool epochHadImages = false;
    m_control.setLoader(m_trainLoader.get()); // a cancel also ends a wait for a batch
    m_trainLoader->startEpoch(epoch);
    for (int i = 0; i < curve.iterations();) {
        if (m_control.stopping() || (cancel && cancel->load()))
            return Error{QStringLiteral("the LR finder was cancelled"), ErrorCode::Cancelled};
        std::optional<Batch> batch = m_trainLoader->next();
        if (!batch) { // the epoch is done: the next one, in its own order
            if (m_control.stopping())
                return Error{QStringLiteral("the LR finder was cancelled"), ErrorCode::Cancelled};
            if (!epochHadImages)
                return Error{QStringLiteral("no training image could be loaded")};
            epochHadImages = false;
            m_trainLoader->startEpoch(++epoch);
            continue;
        }
        if (batch->count == 0) {
            m_trainLoader->recycle(std::move(*batch));
            continue;
        }
        epochHadImages = true;
        const torch::Tensor input = tm::batchToDevice(*batch, m_device, m_channelsLast);
        const torch::Tensor labels = tm::batchLabels(*batch, m_device);
        QStringList files;
        for (int k = 0; k < batch->count; ++k)
            files.append(m_data.train[size_t(batch->sampleIndices[size_t(k)])].path);
        result.batches.append(files);
        m_trainLoader->recycle(std::move(*batch));
        const double lr = curve.rate(i);
        const int count = int(files.size());
        const torch::Tensor loss = trainStep({input, labels, count, /*features=*/false}, lr).second;
        ++m_step;
        ++i;
        const bool goesOn = curve.record(lr, loss.item<float>());
        if (callbacks.progress)
            callbacks.progress(
                {i, curve.iterations(), lr, curve.losses().last(), curve.smoothed().last()});
        if (!goesOn)
            break;
    }
    return success();
}

/// What a ramp changes: every tensor of the model's state dict, the optimizer's state, torch's
/// generators (dropout, stochastic depth draw from them) and the step count and fp16 loss scale.
TrainingRun::StateSnapshot TrainingRun::snapshotState() const
{
    StateSnapshot snapshot;
    torch::NoGradGuard noGrad;
    for (const auto &[name, tensor] : tm::stateDictEntries(*m_net))
        snapshot.tensors.push_back(tensor.detach().clone());
    snapshot.optimizer = m_optimizer->stateDict();
    snapshot.step = m_step;
    snapshot.lossScale = m_lossScale;
    snapshot.goodSteps = m_goodSteps;
    const auto cloneOf = [](at::Generator generator) {
        const std::lock_guard lock(generator.mutex());
        return generator.clone();
    };
    snapshot.cpuGenerator = cloneOf(at::detail::getDefaultCPUGenerator());
    if (m_cuda)
        snapshot.cudaGenerator = cloneOf(cudaGenerator());
    return snapshot;
}

/// Puts back snapshotState()'s state, bit for bit, with no gradients (fastai's zero_grad()).
void TrainingRun::restoreState(const StateSnapshot &snapshot)
{
    torch::NoGradGuard noGrad;
    const auto entries = tm::stateDictEntries(*m_net);
    for (size_t i = 0; i < entries.size(); ++i) {
        torch::Tensor tensor = entries[i].second;
        tensor.copy_(snapshot.tensors[i]);
    }
    for (const auto &[name, p] : tm::parameterEntries(*m_net)) {
        torch::Tensor parameter = p;
        parameter.mutable_grad() = torch::Tensor();
    }
    m_optimizer->clearState();
    (void)m_optimizer->load(snapshot.optimizer, m_device); // its own state: it fits
    m_step = snapshot.step;
    m_lossScale = snapshot.lossScale;
    m_goodSteps = snapshot.goodSteps;
    const auto restoreInto = [](at::Generator generator, const at::Generator &saved) {
        const std::lock_guard lock(generator.mutex());
        generator.set_state(saved.get_state());
    };
    restoreInto(at::detail::getDefaultCPUGenerator(), snapshot.cpuGenerator);
    if (m_cuda)
        restoreInto(cudaGenerator(), snapshot.cudaGenerator);
}

} // namespace

// ------------------------------------------------------------------------------------------------

struct Trainer::Impl
{
    TrainConfig config;
    RunControl control;
};

Trainer::Trainer(TrainConfig config)
    : d(std::make_unique<Impl>())
{
    d->config = std::move(config);
}

Trainer::~Trainer() = default;

void Trainer::pause()
{
    d->control.pause();
}

void Trainer::resume()
{
    d->control.resume();
}

bool Trainer::isPaused() const
{
    return d->control.isPaused();
}

void Trainer::stop(bool saveCheckpoint)
{
    d->control.stop(saveCheckpoint);
}

TrainFinish Trainer::run(const TrainCallbacks &given)
{
    const TrainCallbacks callbacks = withTensorBoardEvents(given);
    TrainFinish finish;
    try {
        TrainingRun run(d->control, d->config, callbacks);
        finish = run.train();
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
    d->control.setLoader(nullptr);
    // torchrun's summary names it as the root cause.
    if (finish.outcome == TrainOutcome::Failed && d->config.distributed)
        writeElasticError(d->config.distributed->errorFile, finish.message);
    if (callbacks.finished)
        callbacks.finished(finish);
    return finish;
}

double trainingLoss(const std::vector<float> &logits, const std::vector<int64_t> &labels,
                    int classes, const std::vector<double> &weights, double smoothing)
{
    const auto rows = int64_t(labels.size());
    const torch::Tensor input
        = torch::from_blob(const_cast<float *>(logits.data()), {rows, classes}, torch::kFloat)
              .clone();
    const torch::Tensor target
        = torch::from_blob(const_cast<int64_t *>(labels.data()), {rows}, torch::kLong).clone();
    return crossEntropy(input, target, classWeightTensor(weights, torch::kCPU), smoothing)
        .item<double>();
}

Result<LrFindResult> findLearningRate(const TrainConfig &config, const LrFindOptions &options,
                                      const LrFindCallbacks &callbacks,
                                      const std::atomic_bool *cancel)
{
    TrainConfig cfg = config;
    cfg.resumePath.clear(); // the finder starts from the config's model, never a resume
    if (cfg.outDir.isEmpty())
        cfg.outDir = QStringLiteral("."); // validate() asks for a run folder; none is written
    RunControl control;
    TrainCallbacks trainCallbacks;
    trainCallbacks.status = callbacks.status;
    // A cancel while the data, the model or pretrained weights are prepared stops those too: the
    // flag is watched and handed to the run's controls, which prepare() reads.
    std::atomic_bool done{false};
    std::thread watcher;
    if (cancel) {
        watcher = std::thread([&control, &done, cancel] {
            while (!done.load()) {
                if (cancel->load()) {
                    control.stop(/*save=*/false);
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        });
    }
    const auto stopWatching = qScopeGuard([&] {
        done = true;
        if (watcher.joinable())
            watcher.join();
    });
    try {
        TrainingRun run(control, cfg, trainCallbacks);
        return run.findLr(options, callbacks, cancel);
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("The LR finder failed: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 1))};
    } catch (const std::exception &e) {
        return Error{QStringLiteral("The LR finder failed: %1").arg(QString::fromUtf8(e.what()))};
    }
}

} // namespace ifs
