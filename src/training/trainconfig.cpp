// The torch-free half of training.h: names, the configuration's JSON, run folders and what a
// training checkpoint holds.

#include "training/training.h"

#include "base/cpufeatures.h"
#include "checkpoint/checkpointreader.h"
#include "training/models.h"
#include "training/trainingdata.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace {

template<typename E, size_t N>
std::optional<E> fromName(const QString &name,
                          const std::array<std::pair<E, const char16_t *>, N> &table)
{
    for (const auto &[value, text] : table) {
        if (name.compare(QStringView(text), Qt::CaseInsensitive) == 0)
            return value;
    }
    return std::nullopt;
}

template<typename E, size_t N>
QString toName(E value, const std::array<std::pair<E, const char16_t *>, N> &table)
{
    for (const auto &[v, text] : table) {
        if (v == value)
            return QString::fromUtf16(text);
    }
    return {};
}

constexpr std::array<std::pair<OptimizerKind, const char16_t *>, 3> kOptimizers{
    {{OptimizerKind::SGD, u"sgd"},
     {OptimizerKind::Adam, u"adam"},
     {OptimizerKind::AdamW, u"adamw"}}};
constexpr std::array<std::pair<ScheduleKind, const char16_t *>, 4> kSchedules{
    {{ScheduleKind::Constant, u"constant"},
     {ScheduleKind::Step, u"step"},
     {ScheduleKind::Cosine, u"cosine"},
     {ScheduleKind::OneCycle, u"onecycle"}}};
constexpr std::array<std::pair<AmpMode, const char16_t *>, 4> kAmp{{{AmpMode::Off, u"off"},
                                                                    {AmpMode::BFloat16, u"bf16"},
                                                                    {AmpMode::Float16, u"fp16"},
                                                                    {AmpMode::Auto, u"auto"}}};
constexpr std::array<std::pair<FinetuneMode, const char16_t *>, 3> kFinetune{
    {{FinetuneMode::Full, u"full"},
     {FinetuneMode::Head, u"head"},
     {FinetuneMode::HeadThenFull, u"head-then-full"}}};
constexpr std::array<std::pair<MemoryFormat, const char16_t *>, 3> kMemoryFormats{
    {{MemoryFormat::Auto, u"auto"},
     {MemoryFormat::ChannelsLast, u"channels_last"},
     {MemoryFormat::Contiguous, u"contiguous"}}};
// The first name of a value is the one written; the others are read too.
constexpr std::array<std::pair<ClassWeighting, const char16_t *>, 3> kClassWeightings{
    {{ClassWeighting::None, u"none"},
     {ClassWeighting::InverseFrequency, u"balanced"},
     {ClassWeighting::InverseFrequency, u"inverse-frequency"}}};
constexpr std::array<std::pair<SamplerKind, const char16_t *>, 2> kSamplers{
    {{SamplerKind::Shuffle, u"shuffle"}, {SamplerKind::Weighted, u"weighted"}}};
constexpr std::array<std::pair<EarlyStopMetric, const char16_t *>, 3> kEarlyStops{
    {{EarlyStopMetric::Off, u"off"},
     {EarlyStopMetric::ValAccuracy, u"val_acc"},
     {EarlyStopMetric::ValLoss, u"val_loss"}}};

} // namespace

QString optimizerName(OptimizerKind kind)
{
    return toName(kind, kOptimizers);
}
QString scheduleName(ScheduleKind kind)
{
    return toName(kind, kSchedules);
}
QString ampName(AmpMode mode)
{
    return toName(mode, kAmp);
}
QString finetuneName(FinetuneMode mode)
{
    return toName(mode, kFinetune);
}
std::optional<FinetuneMode> finetuneFromName(const QString &name)
{
    return fromName(name, kFinetune);
}
std::optional<OptimizerKind> optimizerFromName(const QString &name)
{
    return fromName(name, kOptimizers);
}
std::optional<ScheduleKind> scheduleFromName(const QString &name)
{
    return fromName(name, kSchedules);
}
std::optional<AmpMode> ampFromName(const QString &name)
{
    return fromName(name, kAmp);
}
QString memoryFormatName(MemoryFormat format)
{
    return toName(format, kMemoryFormats);
}
std::optional<MemoryFormat> memoryFormatFromName(const QString &name)
{
    return fromName(name, kMemoryFormats);
}

QString classWeightingName(ClassWeighting weighting)
{
    return toName(weighting, kClassWeightings);
}
QString samplerName(SamplerKind sampler)
{
    return toName(sampler, kSamplers);
}
QString earlyStopName(EarlyStopMetric metric)
{
    return toName(metric, kEarlyStops);
}
std::optional<ClassWeighting> classWeightingFromName(const QString &name)
{
    return fromName(name, kClassWeightings);
}
std::optional<SamplerKind> samplerFromName(const QString &name)
{
    return fromName(name, kSamplers);
}
std::optional<EarlyStopMetric> earlyStopFromName(const QString &name)
{
    return fromName(name, kEarlyStops);
}

std::vector<double> balancedClassWeights(const std::vector<qint64> &counts)
{
    qint64 total = 0;
    for (const qint64 n : counts)
        total += n;
    std::vector<double> weights;
    weights.reserve(counts.size());
    for (const qint64 n : counts) // n_samples / (n_classes * np.bincount(y)), in float64
        weights.push_back(n > 0 ? double(total) / (double(counts.size()) * double(n)) : 0.0);
    return weights;
}

bool usesChannelsLast(MemoryFormat format, bool cuda)
{
    Q_UNUSED(cuda); // one answer on both today; kept for a device that would want another
    return format != MemoryFormat::Contiguous;
}

bool ampAutoRule(const QString &arch)
{
    // Measured with bench/ (README, "bf16 on the CPU"), interleaved against float32 on a quiet
    // machine: small_cnn 1.37x, resnet18 1.75x at 112 px, 1.80x at 224 px, 1.66x head-only. An
    // architecture measured slower in bf16 goes here.
    Q_UNUSED(arch);
    return true;
}

AmpChoice resolveAmp(AmpMode requested, const QString &arch, bool cuda, bool cpuBf16)
{
    switch (requested) {
    case AmpMode::Off:
        return {AmpMode::Off, {}};
    case AmpMode::Float16:
        if (cuda)
            return {AmpMode::Float16, {}};
        return {AmpMode::Off,
                QStringLiteral("float16 autocast is for CUDA: training in float32 on "
                               "the CPU (bf16 is the CPU's mixed precision)")};
    case AmpMode::BFloat16:
        if (cuda || cpuBf16)
            return {AmpMode::BFloat16, {}};
        return {AmpMode::BFloat16,
                QStringLiteral("bfloat16 autocast, as asked: this CPU has no native bf16 "
                               "(AVX512-BF16 or AMX), so it is emulated and likely slower than "
                               "float32 (--amp auto picks float32 here)")};
    case AmpMode::Auto:
        break;
    }
    if (cuda)
        return {AmpMode::Off, {}}; // CUDA's choice stays the user's (bf16 or fp16)
    if (!cpuBf16)
        return {AmpMode::Off, {}};
    if (!ampAutoRule(arch))
        return {AmpMode::Off,
                QStringLiteral("float32: bf16 autocast is not faster for %1 on this CPU "
                               "(--amp bf16 forces it)")
                    .arg(arch)};
    return {AmpMode::BFloat16,
            QStringLiteral("bfloat16 autocast with channels_last: the CPU has %1 (--amp off "
                           "trains in float32)")
                .arg(cpuBf16Features())};
}

namespace {

QJsonArray doublesToJson(const std::vector<double> &values)
{
    QJsonArray array;
    for (const double v : values)
        array.append(v);
    return array;
}

} // namespace

QJsonObject TrainConfig::toJson() const
{
    return QJsonObject{
        {QStringLiteral("data"), dataRoot},
        {QStringLiteral("val"), valRoot},
        {QStringLiteral("val_split"), valSplit},
        {QStringLiteral("train_transforms"), trainTransforms},
        {QStringLiteral("val_transforms"), valTransforms},
        {QStringLiteral("batch_size"), batchSize},
        {QStringLiteral("workers"), workers},
        {QStringLiteral("drop_last"), dropLast},
        {QStringLiteral("arch"), arch},
        {QStringLiteral("weights"), weightsPath},
        {QStringLiteral("pretrained"), pretrained},
        {QStringLiteral("finetune"), finetuneName(finetune)},
        {QStringLiteral("unfreeze_epoch"), unfreezeEpoch},
        {QStringLiteral("backbone_lr_factor"), backboneLrFactor},
        {QStringLiteral("cache_features"), cacheFeatures},
        {QStringLiteral("epochs"), epochs},
        {QStringLiteral("optimizer"), optimizerName(optimizer)},
        {QStringLiteral("lr"), lr},
        {QStringLiteral("momentum"), momentum},
        {QStringLiteral("nesterov"), nesterov},
        {QStringLiteral("weight_decay"), weightDecay},
        {QStringLiteral("betas"), QJsonArray{beta1, beta2}},
        {QStringLiteral("eps"), eps},
        {QStringLiteral("schedule"), scheduleName(schedule)},
        {QStringLiteral("warmup_epochs"), warmupEpochs},
        {QStringLiteral("step_epochs"), stepEpochs},
        {QStringLiteral("step_gamma"), stepGamma},
        {QStringLiteral("label_smoothing"), labelSmoothing},
        {QStringLiteral("grad_clip_norm"), gradClipNorm},
        {QStringLiteral("class_weighting"), classWeightingName(classWeighting)},
        {QStringLiteral("class_weights"), doublesToJson(classWeights)},
        {QStringLiteral("sampler"), samplerName(sampler)},
        {QStringLiteral("early_stopping"), earlyStopName(earlyStopping)},
        {QStringLiteral("patience"), patience},
        {QStringLiteral("min_delta"), minDelta},
        // A string: JSON numbers are doubles and seeds are 64-bit.
        {QStringLiteral("seed"), QString::number(seed)},
        {QStringLiteral("device"), device},
        {QStringLiteral("memory_format"), memoryFormatName(memoryFormat)},
        {QStringLiteral("amp"), ampName(amp)},
        {QStringLiteral("threads"), threads},
        {QStringLiteral("out"), outDir},
        {QStringLiteral("save_every"), saveEveryEpochs},
        {QStringLiteral("resume"), resumePath},
        {QStringLiteral("resume_weights_only"), resumeWeightsOnly},
    };
}

TrainConfig exactResumeConfig(const TrainConfig &saved, const TrainConfig &current)
{
    TrainConfig merged = saved;
    merged.dataRoot = current.dataRoot;
    merged.valRoot = current.valRoot.isEmpty() ? saved.valRoot : current.valRoot;
    merged.device = current.device;
    merged.memoryFormat = current.memoryFormat;
    // bf16 rounds otherwise than float32: the run's own mode continues it as it was.
    merged.amp = current.amp == AmpMode::Auto ? saved.amp : current.amp;
    // Float sums round by how the work is split among threads: only the run's own count
    // continues bit for bit, so it is restored unless this run asks for a count.
    merged.threads = current.threads > 0 ? current.threads : saved.threads;
    merged.workers = current.workers;
    merged.outDir = current.outDir;
    merged.epochs = std::max(current.epochs, saved.epochs);
    merged.resumePath = current.resumePath;
    merged.resumeWeightsOnly = false;
    merged.maxSteps = current.maxSteps;
    merged.distributed = current.distributed; // this run's processes
    return merged;
}

Result<TrainConfig> TrainConfig::fromJson(const QJsonObject &json)
{
    TrainConfig c;
    QStringList bad;
    auto str = [&](const char *key, QString &out) {
        const QJsonValue v = json.value(QLatin1String(key));
        if (v.isString())
            out = v.toString();
        else if (!v.isUndefined() && !v.isNull())
            bad.append(QLatin1String(key));
    };
    auto num = [&](const char *key, double &out) {
        const QJsonValue v = json.value(QLatin1String(key));
        if (v.isDouble())
            out = v.toDouble();
        else if (!v.isUndefined())
            bad.append(QLatin1String(key));
    };
    auto integer = [&](const char *key, int &out) {
        double d = out;
        num(key, d);
        out = int(d);
    };
    auto flag = [&](const char *key, bool &out) {
        const QJsonValue v = json.value(QLatin1String(key));
        if (v.isBool())
            out = v.toBool();
        else if (!v.isUndefined())
            bad.append(QLatin1String(key));
    };
    /// A name read by `parse` (optimizerFromName, ...); unknown names are bad values.
    auto enumeration = [&](const char *key, auto &out, auto parse) {
        QString name;
        str(key, name);
        if (name.isEmpty())
            return;
        if (auto value = parse(name))
            out = *value;
        else
            bad.append(QLatin1String(key));
    };
    str("data", c.dataRoot);
    str("val", c.valRoot);
    num("val_split", c.valSplit);
    str("train_transforms", c.trainTransforms);
    str("val_transforms", c.valTransforms);
    integer("batch_size", c.batchSize);
    integer("workers", c.workers);
    flag("drop_last", c.dropLast);
    str("arch", c.arch);
    str("weights", c.weightsPath);
    str("pretrained", c.pretrained);
    enumeration("finetune", c.finetune, finetuneFromName);
    integer("unfreeze_epoch", c.unfreezeEpoch);
    num("backbone_lr_factor", c.backboneLrFactor);
    flag("cache_features", c.cacheFeatures);
    integer("epochs", c.epochs);
    enumeration("optimizer", c.optimizer, optimizerFromName);
    num("lr", c.lr);
    num("momentum", c.momentum);
    flag("nesterov", c.nesterov);
    num("weight_decay", c.weightDecay);
    const QJsonArray betas = json.value(QStringLiteral("betas")).toArray();
    if (betas.size() == 2) {
        c.beta1 = betas[0].toDouble(c.beta1);
        c.beta2 = betas[1].toDouble(c.beta2);
    }
    num("eps", c.eps);
    enumeration("schedule", c.schedule, scheduleFromName);
    num("warmup_epochs", c.warmupEpochs);
    integer("step_epochs", c.stepEpochs);
    num("step_gamma", c.stepGamma);
    num("label_smoothing", c.labelSmoothing);
    num("grad_clip_norm", c.gradClipNorm);
    enumeration("class_weighting", c.classWeighting, classWeightingFromName);
    for (const QJsonValue v : json.value(QStringLiteral("class_weights")).toArray())
        c.classWeights.push_back(v.toDouble());
    enumeration("sampler", c.sampler, samplerFromName);
    enumeration("early_stopping", c.earlyStopping, earlyStopFromName);
    integer("patience", c.patience);
    num("min_delta", c.minDelta);
    const QJsonValue seed = json.value(QStringLiteral("seed"));
    if (seed.isString()) {
        bool ok = false;
        c.seed = seed.toString().toULongLong(&ok);
        if (!ok)
            bad.append(QStringLiteral("seed"));
    } else if (seed.isDouble()) {
        c.seed = uint64_t(seed.toDouble());
    }
    str("device", c.device);
    enumeration("memory_format", c.memoryFormat, memoryFormatFromName);
    // Run folders written before memory_format said "channels_last": true|false.
    if (const QJsonValue legacy = json.value(QStringLiteral("channels_last"));
        legacy.isBool() && !json.contains(QStringLiteral("memory_format")))
        c.memoryFormat = legacy.toBool() ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    enumeration("amp", c.amp, ampFromName);
    integer("threads", c.threads);
    str("out", c.outDir);
    integer("save_every", c.saveEveryEpochs);
    str("resume", c.resumePath);
    flag("resume_weights_only", c.resumeWeightsOnly);
    if (!bad.isEmpty())
        return Error{QStringLiteral("the training configuration has bad values for: %1")
                         .arg(bad.join(QStringLiteral(", ")))};
    return c;
}

// ------------------------------------------------------------------------------------------------

QStringList CheckpointSummary::lines() const
{
    QStringList out;
    out.append(QStringLiteral("Model: %1 with %2 classes").arg(arch).arg(numClasses));
    out.append(midEpoch
                   ? QStringLiteral("Saved inside epoch %1, after step %2").arg(epoch + 1).arg(step)
                   : QStringLiteral("Epochs done: %1 (step %2)").arg(epoch).arg(step));
    if (bestValAccuracy >= 0.0)
        out.append(QStringLiteral("Best validation accuracy: %1%")
                       .arg(bestValAccuracy * 100.0, 0, 'f', 2));
    out.append(hasOptimizerState
                   ? QStringLiteral("Optimizer state: %1").arg(optimizer)
                   : QStringLiteral("No optimizer state: only a weights-only start is possible"));
    if (!schedule.isEmpty())
        out.append(QStringLiteral("Schedule: %1").arg(schedule));
    out.append(hasRngState ? QStringLiteral(
                   "Random-number state: saved (an exact resume continues the same run)")
                           : QStringLiteral("Random-number state: not saved"));
    if (!classes.isEmpty()) {
        QStringList shown = classes.mid(0, 12);
        if (classes.size() > 12)
            shown.append(QStringLiteral("… %1 more").arg(classes.size() - 12));
        out.append(QStringLiteral("Classes: %1").arg(shown.join(QStringLiteral(", "))));
    }
    return out;
}

Result<CheckpointSummary> summarizeTrainingCheckpoint(const QString &path)
{
    ckpt::ReadOptions options;
    auto file = ckpt::readCheckpoint(path, options);
    if (!file)
        return file.error();
    const ckpt::Value &root = file->root;
    if (!root.isDict() || !root.contains(u"model_state_dict"))
        return Error{QStringLiteral("“%1” is not a training checkpoint of ImageFolder Studio's "
                                    "layout (no 'model_state_dict'); load it as start-up weights "
                                    "instead")
                         .arg(QFileInfo(path).fileName())};
    CheckpointSummary s;
    s.arch = root.value(u"arch").toString();
    s.numClasses = int(root.value(u"num_classes").toInt());
    s.epoch = int(root.value(u"epoch").toInt());
    s.step = root.value(u"step").toInt();
    s.classes = classesFromClassToIdx(root.value(u"class_to_idx")).value_or(QStringList());
    const ckpt::Value optimizer = root.value(u"optimizer_state_dict");
    s.hasOptimizerState = optimizer.isDict() && optimizer.contains(u"param_groups");
    const ckpt::Value config = root.value(u"config");
    for (const auto &[key, value] : config.entries()) {
        if (value.isString())
            s.config.insert(key.toString(), value.toString());
        else if (value.isBool())
            s.config.insert(key.toString(), value.toBool());
        else if (value.isInt() || value.isFloat())
            s.config.insert(key.toString(), value.toDouble());
        else if (value.isList() || value.isTuple()) {
            QJsonArray array;
            for (const ckpt::Value &item : value.items())
                array.append(item.toDouble());
            s.config.insert(key.toString(), array);
        }
    }
    if (s.hasOptimizerState) {
        const ckpt::Value group = optimizer.value(u"param_groups").at(0);
        const QString kind = s.config.value(QStringLiteral("optimizer")).toString();
        s.optimizer = QStringLiteral("%1 (lr %2")
                          .arg(kind.isEmpty() ? QStringLiteral("?") : kind.toUpper())
                          .arg(group.value(u"lr").toDouble());
        if (group.contains(u"momentum"))
            s.optimizer += QStringLiteral(", momentum %1").arg(group.value(u"momentum").toDouble());
        s.optimizer
            += QStringLiteral(", weight decay %1)").arg(group.value(u"weight_decay").toDouble());
    }
    const ckpt::Value schedule = root.value(u"scheduler_state_dict").value(u"ifs_schedule");
    if (schedule.isDict())
        s.schedule = QStringLiteral("%1, step %2 of %3")
                         .arg(schedule.value(u"name").toString())
                         .arg(root.value(u"scheduler_state_dict").value(u"last_epoch").toInt())
                         .arg(schedule.value(u"total_steps").toInt());
    const ckpt::Value metrics = root.value(u"metrics");
    if (metrics.contains(u"best_val_accuracy"))
        s.bestValAccuracy = metrics.value(u"best_val_accuracy").toDouble() / 100.0;
    s.midEpoch = root.value(u"progress").value(u"batch").toInt() > 0;
    const ckpt::Value transforms = root.value(u"transforms");
    s.trainTransforms = transforms.value(u"train").toString();
    s.valTransforms = transforms.value(u"val").toString();
    s.hasRngState = root.value(u"rng_state").isTensor();
    return s;
}

} // namespace ifs
