// ifstudio-cli train / eval / predict: the training loop, evaluation and prediction of the core,
// with a progress bar on a terminal and JSON for scripts.
#include "cmd_cam.h"
#include "commands.h"
#include "trainoptions.h"

#include "base/jsonwriter.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"
#include "torch/runtime.h"
#include "training/evaluation.h"
#include "training/models.h"
#include "training/pretrained.h"
#include "training/training.h"
#include "training/trainingdata.h"

#include <QCommandLineParser>
#include <QDir>
#include <QDirIterator>
#include <QFileInfo>
#include <QProcessEnvironment>
#include <QSaveFile>
#include <QThread>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <type_traits>

namespace ifs::cli {

namespace {

std::atomic_int g_interrupts{0};

extern "C" void onInterrupt(int)
{
    if (g_interrupts.fetch_add(1) >= 1)
        std::_Exit(kExitCancelled); // a second Ctrl+C: leave now
}

/// --NAME as a number (`out` a double) or a whole number (an int); false with `error` set when it
/// is not one. `out` stays as it is when the option is not given.
template<typename T>
bool parseOption(const QCommandLineParser &parser, const QString &name, T &out, QString &error)
{
    static_assert(std::is_same_v<T, int> || std::is_same_v<T, double>);
    if (!parser.isSet(name))
        return true;
    bool ok = false;
    T v{};
    if constexpr (std::is_same_v<T, int>)
        v = parser.value(name).toInt(&ok);
    else
        v = parser.value(name).toDouble(&ok);
    if (!ok) {
        error = QStringLiteral("--%1 needs %2, not “%3”")
                    .arg(name,
                         std::is_same_v<T, int> ? QStringLiteral("a whole number")
                                                : QStringLiteral("a number"),
                         parser.value(name));
        return false;
    }
    out = v;
    return true;
}

/// --NAME, one of `choices` as read by `parse` (optimizerFromName, ...); false with `error` set
/// for another name.
template<typename E, typename Parse>
bool parseChoice(const QCommandLineParser &parser, const QString &name, const char *choices,
                 Parse parse, E &out, QString &error)
{
    if (!parser.isSet(name))
        return true;
    const auto value = parse(parser.value(name));
    if (!value) {
        error = QStringLiteral("--%1: choose %2, not “%3”")
                    .arg(name, QLatin1String(choices), parser.value(name));
        return false;
    }
    out = *value;
    return true;
}

QString fmt(double v, int decimals)
{
    return QString::number(v, 'f', decimals);
}

} // namespace

const QStringList &trainOnlyOptions()
{
    static const QStringList names{QStringLiteral("epochs"),
                                   QStringLiteral("lr"),
                                   QStringLiteral("schedule"),
                                   QStringLiteral("warmup"),
                                   QStringLiteral("step-epochs"),
                                   QStringLiteral("gamma"),
                                   QStringLiteral("resume"),
                                   QStringLiteral("weights-only"),
                                   QStringLiteral("save-every"),
                                   QStringLiteral("max-steps"),
                                   QStringLiteral("out"),
                                   QStringLiteral("val-transforms"),
                                   QStringLiteral("unfreeze-epoch"),
                                   QStringLiteral("dist-timeout")};
    return names;
}

void addTrainOptions(QCommandLineParser &parser, TrainOptionsFor purpose)
{
    const bool lrFind = purpose == TrainOptionsFor::LrFind;
    const auto opt = [&](const char *name, const char *help, const char *value = nullptr) {
        const QString key = QString::fromLatin1(name);
        if (lrFind && key == u"json")
            return; // lr-find has its own
        QCommandLineOption option = value
            ? QCommandLineOption(key, QString::fromUtf8(help), QString::fromLatin1(value))
            : QCommandLineOption(key, QString::fromUtf8(help));
        if (lrFind && trainOnlyOptions().contains(key))
            option.setFlags(QCommandLineOption::HiddenFromHelp); // refused by lr-find
        parser.addOption(option);
    };
    opt("data", "the ImageFolder root (or a root with train/ and val/)", "ROOT");
    opt("val", "a separate validation ImageFolder", "ROOT");
    opt("val-split",
        "hold out this fraction of each class when there is no val folder (default 0.1)", "F");
    QStringList models;
    for (const ModelArch &arch : modelArchitectures())
        models.append(arch.name);
    opt("model", (models.join(u", ") + QStringLiteral(" (default small_cnn)")).toUtf8().constData(),
        "NAME");
    opt("epochs", "epochs (default 5)", "N");
    opt("batch-size", "batch size (default 64)", "B");
    opt("lr", "learning rate (default 0.1 for SGD, 0.001 for Adam/AdamW)", "LR");
    opt("optimizer", "sgd, adam or adamw (default sgd)", "NAME");
    opt("momentum", "SGD momentum (default 0.9)", "M");
    opt("nesterov", "Nesterov momentum (SGD)");
    opt("weight-decay", "weight decay (default 5e-4; 0.01 for AdamW)", "WD");
    opt("schedule", "constant, step, cosine or onecycle (default cosine)", "NAME");
    opt("warmup", "linear warm-up epochs (default 0)", "EPOCHS");
    opt("step-epochs", "step schedule: decay every N epochs (default 30)", "N");
    opt("gamma", "step schedule: decay factor (default 0.1)", "G");
    opt("label-smoothing", "label smoothing (default 0)", "EPS");
    opt("clip-grad", "clip the gradient norm to this value (default off)", "NORM");
    opt("class-weights",
        "none or balanced: weight the loss by N / (C x n_c) over the training split, as "
        "nn.CrossEntropyLoss(weight=...) (recorded in config.json) (default none)",
        "MODE");
    opt("sampler",
        "shuffle or weighted: each epoch draws the training set's size with replacement, every "
        "class equally likely, as WeightedRandomSampler (default shuffle)",
        "NAME");
    opt("early-stopping",
        "val_acc, val_loss or off: stop after --patience epochs without improvement (default off)",
        "METRIC");
    opt("patience", "early stopping: epochs without improvement (default 5)", "N");
    opt("min-delta",
        "early stopping: the least change that counts as an improvement (accuracy as a fraction, "
        "0.01 = one point) (default 0)",
        "D");
    opt("device", "auto, cpu, cuda or cuda:N (default auto)", "DEV");
    opt("amp",
        "mixed precision: auto, off, bf16 or fp16 (CUDA only) (default auto: bf16 autocast with "
        "channels_last on a CPU with native bf16, for the models it speeds up; float32 otherwise)",
        "MODE");
    opt("memory-format",
        "auto, channels_last or contiguous (default auto: channels_last, which measured fastest "
        "on CUDA and on the CPU; see the README)",
        "FORMAT");
    opt("workers", "input threads (default: all cores)", "N");
    opt("threads", "compute threads (default: all cores)", "N");
    opt("seed", "seed for the model, the order and the augmentations (default 0)", "S");
    opt("weights", "start from these weights (e.g. torchvision's resnet18-f37072fd.pth)", "FILE");
    opt("pretrained",
        "start from torchvision's ImageNet weights: V1, V2 or DEFAULT (the default when no value "
        "follows); found in torch.hub's cache ($TORCH_HOME/hub/checkpoints) or downloaded there",
        "V1|V2");
    opt("finetune",
        "full, head (the backbone frozen, its BatchNorm and stochastic depth in eval mode) or "
        "head-then-full (the head "
        "for --unfreeze-epoch epochs, then everything) (default full)",
        "MODE");
    opt("unfreeze-epoch", "head-then-full: epochs of the head alone (default 1)", "N");
    opt("backbone-lr-factor",
        "the backbone's learning rate is lr x F, in a parameter group of its own (default 1)", "F");
    opt("resume", "continue a run from its last.pth (exactly: model, optimizer, schedule, RNG)",
        "CKPT");
    opt("no-feature-cache",
        "with a frozen backbone, run every image through it at every step instead of computing "
        "its features once");
    opt("weights-only", "with --resume: take only the weights; new optimizer and schedule");
    opt("train-transforms", "torchvision source of the train pipeline (default: fits the dataset)",
        "CODE");
    opt("val-transforms", "torchvision source of the val pipeline", "CODE");
    opt("save-every", "also keep epoch_NNN.pth every N epochs", "N");
    opt("max-steps", "stop (saving last.pth) after N optimizer steps in all", "N");
    opt("out", "the run folder", "RUNDIR");
    opt("json", "one JSON object per epoch on stdout");
    opt("dist-timeout",
        "under torchrun: seconds a rank waits for the others (joining, each exchange) before the "
        "run fails (default 300)",
        "S");
}

/// `--pretrained` takes an optional value, which QCommandLineParser cannot express: a bare
/// `--pretrained` (followed by another option or nothing; train takes no positional argument)
/// becomes `--pretrained=DEFAULT`.
QStringList withPretrainedValue(const QStringList &args)
{
    QStringList out;
    for (qsizetype i = 0; i < args.size(); ++i) {
        out.append(args[i]);
        if (args[i] != u"--pretrained")
            continue;
        if (i + 1 < args.size() && !args[i + 1].startsWith(u'-'))
            out.append(args[++i]);
        else
            out.last() = QStringLiteral("--pretrained=DEFAULT");
    }
    return out;
}

/// The run that train's options ask for (before TrainConfig::validate()); an error names the
/// option and the value it cannot take.
Result<TrainConfig> trainConfigFromOptions(const QCommandLineParser &parser)
{
    TrainConfig config;
    config.dataRoot = parser.value(QStringLiteral("data"));
    config.valRoot = parser.value(QStringLiteral("val"));
    if (parser.isSet(QStringLiteral("model")))
        config.arch = parser.value(QStringLiteral("model"));
    QString error;
    if (!parseChoice(parser, QStringLiteral("optimizer"), "sgd, adam or adamw", optimizerFromName,
                     config.optimizer, error)
        || !parseChoice(parser, QStringLiteral("schedule"), "constant, step, cosine or onecycle",
                        scheduleFromName, config.schedule, error)
        || !parseChoice(parser, QStringLiteral("amp"), "auto, off, bf16 or fp16", ampFromName,
                        config.amp, error)
        || !parseChoice(parser, QStringLiteral("finetune"), "full, head or head-then-full",
                        finetuneFromName, config.finetune, error)
        || !parseChoice(parser, QStringLiteral("class-weights"), "none or balanced",
                        classWeightingFromName, config.classWeighting, error)
        || !parseChoice(parser, QStringLiteral("sampler"), "shuffle or weighted", samplerFromName,
                        config.sampler, error)
        || !parseChoice(parser, QStringLiteral("early-stopping"), "val_acc, val_loss or off",
                        earlyStopFromName, config.earlyStopping, error)
        || !parseChoice(parser, QStringLiteral("memory-format"),
                        "auto, channels_last or contiguous", memoryFormatFromName,
                        config.memoryFormat, error))
        return Error{error};
    if (config.optimizer != OptimizerKind::SGD) { // Adam's usual defaults; --lr etc. override
        config.lr = 1e-3;
        config.weightDecay = config.optimizer == OptimizerKind::AdamW ? 0.01 : 0.0;
    }
    int maxSteps = 0;
    int seed = 0;
    if (!parseOption(parser, QStringLiteral("val-split"), config.valSplit, error)
        || !parseOption(parser, QStringLiteral("epochs"), config.epochs, error)
        || !parseOption(parser, QStringLiteral("batch-size"), config.batchSize, error)
        || !parseOption(parser, QStringLiteral("lr"), config.lr, error)
        || !parseOption(parser, QStringLiteral("momentum"), config.momentum, error)
        || !parseOption(parser, QStringLiteral("weight-decay"), config.weightDecay, error)
        || !parseOption(parser, QStringLiteral("warmup"), config.warmupEpochs, error)
        || !parseOption(parser, QStringLiteral("step-epochs"), config.stepEpochs, error)
        || !parseOption(parser, QStringLiteral("gamma"), config.stepGamma, error)
        || !parseOption(parser, QStringLiteral("label-smoothing"), config.labelSmoothing, error)
        || !parseOption(parser, QStringLiteral("clip-grad"), config.gradClipNorm, error)
        || !parseOption(parser, QStringLiteral("patience"), config.patience, error)
        || !parseOption(parser, QStringLiteral("min-delta"), config.minDelta, error)
        || !parseOption(parser, QStringLiteral("unfreeze-epoch"), config.unfreezeEpoch, error)
        || !parseOption(parser, QStringLiteral("backbone-lr-factor"), config.backboneLrFactor,
                        error)
        || !parseOption(parser, QStringLiteral("workers"), config.workers, error)
        || !parseOption(parser, QStringLiteral("threads"), config.threads, error)
        || !parseOption(parser, QStringLiteral("seed"), seed, error)
        || !parseOption(parser, QStringLiteral("save-every"), config.saveEveryEpochs, error)
        || !parseOption(parser, QStringLiteral("max-steps"), maxSteps, error))
        return Error{error};
    config.seed = uint64_t(seed);
    config.maxSteps = maxSteps;
    config.nesterov = parser.isSet(QStringLiteral("nesterov"));
    if (parser.isSet(QStringLiteral("device")))
        config.device = parser.value(QStringLiteral("device"));
    config.weightsPath = parser.value(QStringLiteral("weights"));
    if (parser.isSet(QStringLiteral("pretrained"))) {
        const std::optional<QString> name
            = pretrainedNameFromText(parser.value(QStringLiteral("pretrained")));
        if (!name)
            return Error{QStringLiteral("--pretrained: choose V1, V2 or DEFAULT, not “%1”")
                             .arg(parser.value(QStringLiteral("pretrained")))};
        config.pretrained = *name;
    }
    config.resumePath = parser.value(QStringLiteral("resume"));
    config.resumeWeightsOnly = parser.isSet(QStringLiteral("weights-only"));
    config.cacheFeatures = !parser.isSet(QStringLiteral("no-feature-cache"));
    config.trainTransforms = parser.value(QStringLiteral("train-transforms"));
    config.valTransforms = parser.value(QStringLiteral("val-transforms"));
    config.outDir = parser.value(QStringLiteral("out"));
    return config;
}

namespace {

/// While it lives, the first Ctrl+C (or SIGTERM) asks the trainer to save and stop; a second
/// one leaves at once (onInterrupt()). A thread watches, so that the signal handler only counts.
class InterruptWatcher
{
public:
    explicit InterruptWatcher(Trainer &trainer)
    {
        std::signal(SIGINT, onInterrupt);
        std::signal(SIGTERM, onInterrupt);
        m_thread = std::thread([this, &trainer] {
            while (!m_done) {
                if (g_interrupts.load() > 0) {
                    trainer.stop(/*saveCheckpoint=*/true);
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~InterruptWatcher()
    {
        m_done = true;
        m_thread.join();
    }
    InterruptWatcher(const InterruptWatcher &) = delete;
    InterruptWatcher &operator=(const InterruptWatcher &) = delete;

private:
    std::atomic_bool m_done{false};
    std::thread m_thread;
};

void writeEpochJson(const EpochReport &report, const QString &device)
{
    const EpochRecord &r = report.record;
    JsonWriter json;
    json.beginObject();
    json.key("epoch").value(r.epoch);
    json.key("step").value(int64_t(r.step));
    json.key("train_loss").value(r.trainLoss);
    json.key("train_acc").value(r.trainAccuracy * 100.0);
    if (report.evaluation) {
        json.key("val_loss").value(r.valLoss);
        json.key("val_acc").value(r.valAccuracy * 100.0);
        json.key("val_macro_f1").value(report.evaluation->macroF1 * 100.0);
    }
    json.key("lr").value(r.lr);
    json.key("seconds").value(r.seconds);
    json.key("images_per_s").value(r.imagesPerSecond);
    json.key("best").value(report.best);
    json.key("device").value(device);
    json.key("last").value(report.lastCheckpoint);
    json.key("skipped_images").value(int64_t(report.newFailures.size()));
    json.endObject();
    writeOut(json.take() + '\n');
    std::fflush(stdout); // one line per epoch, as it happens, also into a pipe
}

/// What train prints while it runs: the start on stderr, a progress bar per epoch, and a line
/// (with --json, a JSON object) per epoch.
class TrainPrinter
{
public:
    TrainPrinter(int epochs, bool json, bool quiet)
        : m_epochs(epochs)
        , m_json(json)
        , m_quiet(quiet)
    { }

    TrainCallbacks callbacks()
    {
        TrainCallbacks c;
        if (m_quiet)
            return c;
        c.started = [this](const TrainStart &s) {
            started(s);
        };
        c.step = [this](const StepProgress &p) {
            step(p);
        };
        c.epoch = [this](const EpochReport &report) {
            epoch(report);
        };
        c.status = [this](const QString &text) {
            // A failed TensorBoard log is said once, as it happens (the run goes on).
            if (text.startsWith(QStringLiteral("TensorBoard events not written")))
                printErr(text);
            // Only a download of pretrained weights is worth a line before the start.
            const QString what = text.section(u':', 0, 0);
            if (text.startsWith(QStringLiteral("Downloading ")) && what != m_download) {
                m_download = what;
                printErr(what + QStringLiteral("…"));
            }
        };
        return c;
    }
    void finishBar()
    {
        if (m_bar)
            m_bar->finish();
    }

private:
    void started(const TrainStart &s)
    {
        m_device = s.device;
        m_epochs = s.epochs;
        printErr(QStringLiteral("Training %1 on %2 (%3). %4")
                     .arg(s.arch, s.device, s.deviceNote, s.runtime));
        printErr(QStringLiteral("%1 classes, %2 training and %3 validation images, %4 batches per "
                                "epoch; input: %5")
                     .arg(s.classes.size())
                     .arg(s.trainSamples)
                     .arg(s.valSamples)
                     .arg(s.batchesPerEpoch)
                     .arg(s.inputPath));
        if (!s.distributed.isEmpty())
            printErr(QStringLiteral("Data-parallel: %1; rank 0 writes the run folder")
                         .arg(s.distributed));
        for (const QString &note : s.notes)
            printErr(QStringLiteral("  %1").arg(note));
    }
    void step(const StepProgress &p)
    {
        if (p.epoch != m_shownEpoch) {
            m_bar = std::make_unique<ProgressLine>(
                QStringLiteral("epoch %1/%2").arg(p.epoch).arg(m_epochs));
            m_shownEpoch = p.epoch;
        }
        m_bar->update(p.batch, p.batches);
    }
    void epoch(const EpochReport &report)
    {
        finishBar();
        if (m_json) {
            writeEpochJson(report, m_device);
            return;
        }
        const EpochRecord &r = report.record;
        QString line = QStringLiteral("epoch %1/%2  train loss %3 acc %4%")
                           .arg(r.epoch)
                           .arg(m_epochs)
                           .arg(fmt(r.trainLoss, 4), fmt(r.trainAccuracy * 100.0, 2));
        if (report.evaluation)
            line += QStringLiteral("  val loss %1 acc %2%")
                        .arg(fmt(r.valLoss, 4), fmt(r.valAccuracy * 100.0, 2));
        line
            += QStringLiteral("  lr %1  %2 s  %3 img/s%4")
                   .arg(QString::number(r.lr, 'g', 4), fmt(r.seconds, 1), fmt(r.imagesPerSecond, 0),
                        report.best ? QStringLiteral("  [best]") : QString());
        printOut(line);
        for (const LoaderFailure &f : report.newFailures)
            printErr(QStringLiteral("  skipped %1: %2").arg(f.path, f.message));
    }

    int m_epochs;
    bool m_json;
    bool m_quiet;
    QString m_device;
    int m_shownEpoch = 0;
    std::unique_ptr<ProgressLine> m_bar;
    QString m_download;
};

/// Under torchrun (its variables set), one rank of a data-parallel run: the timeout, and the
/// compute and input threads shared among the machine's ranks unless given (OMP_NUM_THREADS,
/// which torchrun sets to 1 for several processes, else the cores divided by the local ranks).
Status applyTorchrunEnvironment(const QCommandLineParser &parser, TrainConfig &config)
{
    auto env = DistEnv::fromEnvironment(QProcessEnvironment::systemEnvironment());
    if (!env)
        return env.error();
    if (!env.value())
        return parser.isSet(QStringLiteral("dist-timeout"))
            ? Status(Error{QStringLiteral("--dist-timeout is for runs under torchrun (RANK, "
                                          "WORLD_SIZE, MASTER_ADDR and MASTER_PORT set)")})
            : success();
    DistEnv dist = *env.value();
    QString error;
    if (!parseOption(parser, QStringLiteral("dist-timeout"), dist.timeoutSeconds, error))
        return Error{error};
    if (dist.timeoutSeconds < 1)
        return Error{QStringLiteral("--dist-timeout must be at least 1 second")};
    const int cores = std::max(1, QThread::idealThreadCount());
    const int share = std::max(1, cores / std::max(1, dist.localWorldSize));
    if (config.threads <= 0 && requestedThreads() <= 0) {
        const int omp = qEnvironmentVariableIntValue("OMP_NUM_THREADS");
        config.threads = omp > 0 ? omp : share;
    }
    if (config.workers <= 0)
        config.workers = share;
    config.distributed = dist;
    return success();
}

/// How the run ended, on stderr (with how to resume after Ctrl+C); returns the exit code.
int reportFinish(const TrainFinish &finish, const TrainConfig &config)
{
    if (finish.outcome == TrainOutcome::Failed) {
        printError(finish.message);
        return kExitFailure;
    }
    printErr(finish.message);
    if (!finish.lastCheckpoint.isEmpty())
        printErr(QStringLiteral("last: %1").arg(finish.lastCheckpoint));
    if (!finish.bestCheckpoint.isEmpty())
        printErr(QStringLiteral("best: %1").arg(finish.bestCheckpoint));
    if (finish.outcome == TrainOutcome::Stopped && g_interrupts.load() > 0) {
        printErr(QStringLiteral("Resume with: ifstudio-cli train --data %1 --out %2 --resume %3")
                     .arg(config.dataRoot, config.outDir, finish.lastCheckpoint));
        return kExitCancelled;
    }
    return kExitOk;
}

} // namespace

int runTrain(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Train a classifier on an ImageFolder dataset. RUNDIR gets config.json, metrics.csv, "
        "steps.csv, last.pth (every epoch) and best.pth (best validation accuracy), which "
        "Python's torch.load reads as they are. Ctrl+C saves last.pth and stops; --resume "
        "continues from it."));
    parser.addOption(helpOption());
    addTrainOptions(parser);
    if (const int code = parseCommandLine(parser, withPretrainedValue(args)); code >= 0)
        return code;
    Result<TrainConfig> config = trainConfigFromOptions(parser);
    if (!config) {
        printError(config.errorMessage());
        return kExitUsage;
    }
    if (Status ok = applyTorchrunEnvironment(parser, config.value()); !ok) {
        printError(ok.errorMessage());
        return kExitUsage;
    }
    if (config->threads <= 0)
        config->threads = requestedThreads();
    configureRuntime(config->threads);
    if (Status ok = config->validate(); !ok) {
        printError(ok.errorMessage());
        return kExitUsage;
    }

    // Under a file size limit (ulimit -f) a write that goes past it fails with "File too large",
    // which stops the run with a message, instead of the signal killing the process mid-write.
    std::signal(SIGXFSZ, SIG_IGN);
    Trainer trainer(config.value());
    // Under torchrun rank 0 reports for the run; the other ranks print only their errors.
    const bool quiet = config->distributed && config->distributed->rank > 0;
    TrainPrinter printer(config->epochs, parser.isSet(QStringLiteral("json")), quiet);
    TrainFinish finish;
    {
        const InterruptWatcher watcher(trainer);
        finish = trainer.run(printer.callbacks());
    }
    printer.finishBar();
    if (quiet && finish.outcome != TrainOutcome::Failed)
        return kExitOk; // rank 0 reports how the run ended
    return reportFinish(finish, config.value());
}

namespace {

void addModelOptions(QCommandLineParser &parser)
{
    parser.addOption({QStringLiteral("checkpoint"),
                      QStringLiteral("a checkpoint: ours, or a state dict with --model"),
                      QStringLiteral("CKPT")});
    parser.addOption({QStringLiteral("model"),
                      QStringLiteral("the architecture, for checkpoints that do not say it"),
                      QStringLiteral("NAME")});
    parser.addOption(
        {QStringLiteral("val-transforms"),
         QStringLiteral("torchvision source of the val pipeline, for checkpoints without one"),
         QStringLiteral("CODE")});
    parser.addOption({QStringLiteral("device"),
                      QStringLiteral("auto, cpu, cuda or cuda:N (default auto)"),
                      QStringLiteral("DEV")});
    parser.addOption({QStringLiteral("amp"),
                      QStringLiteral("mixed precision of the forward pass: off, bf16 or auto "
                                     "(default off: float32, as a Python evaluation)"),
                      QStringLiteral("MODE")});
    parser.addOption({QStringLiteral("json"), QStringLiteral("print JSON")});
}

Result<Classifier> loadClassifier(const QCommandLineParser &parser, const QStringList &classes = {})
{
    if (!parser.isSet(QStringLiteral("checkpoint")))
        return Error{QStringLiteral("give the model with --checkpoint CKPT")};
    ClassifierOptions options;
    options.arch = parser.value(QStringLiteral("model"));
    options.valTransforms = parser.value(QStringLiteral("val-transforms"));
    if (parser.isSet(QStringLiteral("device")))
        options.device = parser.value(QStringLiteral("device"));
    options.classes = classes;
    QString error;
    options.amp = AmpMode::Off;
    if (!parseChoice(parser, QStringLiteral("amp"), "off, bf16 or auto", ampFromName, options.amp,
                     error))
        return Error{error};
    return Classifier::load(parser.value(QStringLiteral("checkpoint")), options);
}

} // namespace

int runEval(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Evaluate a checkpoint on an ImageFolder with the val transform stored in it: accuracy, "
        "per-class precision/recall/F1 and the confusion matrix. A root with train/ and val/ "
        "is evaluated on its val split."));
    parser.addOption(helpOption());
    parser.addOption(
        {QStringLiteral("data"), QStringLiteral("the ImageFolder root"), QStringLiteral("ROOT")});
    parser.addOption({QStringLiteral("batch-size"), QStringLiteral("batch size (default 128)"),
                      QStringLiteral("B")});
    parser.addOption({QStringLiteral("workers"),
                      QStringLiteral("input threads (default: all cores)"), QStringLiteral("N")});
    addModelOptions(parser);
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    configureRuntime(requestedThreads());
    if (!parser.isSet(QStringLiteral("data"))) {
        printError(QStringLiteral("give the images with --data ROOT"));
        return kExitUsage;
    }
    QString root = parser.value(QStringLiteral("data"));
    const DatasetLayout layout = detectLayout(root);
    if (layout.hasSplits() && layout.splits.size() > 1) {
        root = layout.splitRoot(layout.splits.at(1));
        printErr(QStringLiteral("Evaluating the %1 split: %2").arg(layout.splits.at(1), root));
    }
    QStringList classes;
    auto samples = imageFolderSamples(root, &classes);
    if (!samples) {
        printError(samples.errorMessage());
        return kExitFailure;
    }
    auto classifier = loadClassifier(parser, classes);
    if (!classifier) {
        printError(classifier.errorMessage());
        return kExitFailure;
    }
    if (classifier->classes() != classes) {
        printError(QStringLiteral("the checkpoint's classes (%1) are not the dataset's (%2): the "
                                  "class indices would not mean the same")
                       .arg(classifier->classes().join(QStringLiteral(", ")),
                            classes.join(QStringLiteral(", "))));
        return kExitFailure;
    }
    for (const QString &note : classifier->notes())
        printErr(QStringLiteral("  %1").arg(note));
    int batchSize = 128, workers = 0;
    QString error;
    if (!parseOption(parser, QStringLiteral("batch-size"), batchSize, error)
        || !parseOption(parser, QStringLiteral("workers"), workers, error)) {
        printError(error);
        return kExitUsage;
    }
    ProgressLine bar(QStringLiteral("evaluating"));
    auto evaluation
        = classifier->evaluate(samples.value(), batchSize, workers,
                               [&](qint64 done, qint64 total) { bar.update(done, total); });
    bar.finish();
    if (!evaluation) {
        printError(evaluation.errorMessage());
        return kExitFailure;
    }
    const Evaluation &e = evaluation.value();
    if (parser.isSet(QStringLiteral("json"))) {
        JsonWriter json(2);
        json.beginObject();
        json.key("checkpoint").value(parser.value(QStringLiteral("checkpoint")));
        json.key("data").value(root);
        json.key("arch").value(classifier->arch());
        json.key("device").value(classifier->device());
        json.key("images").value(int64_t(e.predictions.size()));
        json.key("accuracy").value(e.accuracy * 100.0);
        json.key("loss").value(e.loss);
        json.key("macro_f1").value(e.macroF1 * 100.0);
        json.key("classes").beginArray();
        for (const QString &c : e.classes)
            json.value(c);
        json.endArray();
        json.key("per_class").beginArray();
        for (qsizetype c = 0; c < e.classes.size(); ++c) {
            json.beginObject();
            json.key("class").value(e.classes[c]);
            json.key("precision").value(e.perClass[c].precision * 100.0);
            json.key("recall").value(e.perClass[c].recall * 100.0);
            json.key("f1").value(e.perClass[c].f1 * 100.0);
            json.key("support").value(int64_t(e.perClass[c].support));
            json.endObject();
        }
        json.endArray();
        json.key("confusion").beginArray();
        for (qsizetype r = 0; r < e.classes.size(); ++r) {
            json.beginArray();
            for (qsizetype c = 0; c < e.classes.size(); ++c)
                json.value(int64_t(e.count(int(r), int(c))));
            json.endArray();
        }
        json.endArray();
        json.key("skipped").beginArray();
        for (const LoaderFailure &f : e.failures) {
            json.beginObject();
            json.key("path").value(f.path);
            json.key("error").value(f.message);
            json.endObject();
        }
        json.endArray();
        json.endObject();
        writeOut(json.take() + '\n');
        return kExitOk;
    }
    printOut(e.classReportText());
    printOut(e.confusionText());
    for (const LoaderFailure &f : e.failures)
        printErr(QStringLiteral("skipped %1: %2").arg(f.path, f.message));
    return kExitOk;
}

namespace {

/// predict without --csv: every image listed first (sorted per folder), then printed.
int printPredictions(const QCommandLineParser &parser, Classifier &classifier, int topk)
{
    QStringList images;
    for (const QString &arg : parser.positionalArguments()) {
        const QFileInfo info(arg);
        if (info.isDir()) {
            QStringList found;
            QDirIterator it(arg, QDir::Files,
                            QDirIterator::Subdirectories | QDirIterator::FollowSymlinks);
            while (it.hasNext()) {
                const QString path = it.next();
                if (hasImageExtension(QFileInfo(path).fileName().toStdString()))
                    found.append(path);
            }
            found.sort();
            images += found;
        } else if (info.exists()) {
            images.append(arg);
        } else {
            printError(QStringLiteral("“%1” does not exist").arg(arg));
            return kExitFailure;
        }
    }
    if (images.isEmpty()) {
        printError(QStringLiteral("no images given (files or folders of .jpg, .png, …)"));
        return kExitUsage;
    }
    auto predictions = classifier.predict(images, topk);
    if (!predictions) {
        printError(predictions.errorMessage());
        return kExitFailure;
    }
    const QStringList classes = classifier.classes();
    int failed = writeCamOverlays(parser, classifier, images);
    if (parser.isSet(QStringLiteral("json"))) {
        JsonWriter json(2);
        json.beginObject();
        json.key("checkpoint")
            .value(parser.isSet(QStringLiteral("checkpoint"))
                       ? parser.value(QStringLiteral("checkpoint"))
                       : parser.value(QStringLiteral("model")));
        json.key("predictions").beginArray();
        for (const ImagePrediction &p : predictions.value()) {
            json.beginObject();
            json.key("path").value(p.path);
            if (!p.error.isEmpty()) {
                json.key("error").value(p.error);
                ++failed;
            } else {
                json.key("top").beginArray();
                for (const auto &[index, probability] : p.top) {
                    json.beginObject();
                    json.key("class").value(classes.value(index));
                    json.key("index").value(index);
                    json.key("probability").value(double(probability));
                    json.endObject();
                }
                json.endArray();
            }
            json.endObject();
        }
        json.endArray();
        json.endObject();
        writeOut(json.take() + '\n');
    } else {
        for (const ImagePrediction &p : predictions.value()) {
            if (!p.error.isEmpty()) {
                printErr(QStringLiteral("%1: %2").arg(p.path, p.error));
                ++failed;
                continue;
            }
            QStringList parts;
            for (const auto &[index, probability] : p.top)
                parts.append(QStringLiteral("%1 %2%").arg(classes.value(index),
                                                          fmt(probability * 100.0, 1)));
            printOut(QStringLiteral("%1: %2").arg(p.path, parts.join(QStringLiteral(", "))));
        }
    }
    return failed == 0 ? kExitOk : kExitFailure;
}

} // namespace

namespace {

/// A CSV field, quoted when it needs to be.
QString csvField(const QString &text)
{
    if (!text.contains(u',') && !text.contains(u'"') && !text.contains(u'\n')
        && !text.contains(u'\r'))
        return text;
    return u'"' + QString(text).replace(u'"', QStringLiteral("\"\"")) + u'"';
}

/// Predicts the images of `inputs` (files, or folders walked as they are listed, never held
/// whole) in chunks, writing one CSV row per image as each chunk finishes: memory stays flat
/// whatever the folder's size. The file appears complete or not at all (QSaveFile).
int predictToCsv(Classifier &classifier, const QStringList &inputs, int topk, const QString &csv)
{
    QSaveFile out(csv);
    if (!out.open(QIODevice::WriteOnly)) {
        printError(QStringLiteral("cannot write “%1”: %2").arg(csv, out.errorString()));
        return kExitFailure;
    }
    const QStringList classes = classifier.classes();
    const int k = std::min(topk, int(classes.size()));
    QStringList header{QStringLiteral("path")};
    for (int i = 1; i <= k; ++i)
        header << QStringLiteral("class_%1").arg(i) << QStringLiteral("probability_%1").arg(i);
    header << QStringLiteral("error");
    out.write(header.join(u',').toUtf8() + '\n');
    qint64 written = 0, failed = 0;
    QStringList chunk;
    auto flush = [&]() -> bool {
        if (chunk.isEmpty())
            return true;
        auto predictions = classifier.predict(chunk, k);
        if (!predictions) {
            printError(predictions.errorMessage());
            return false;
        }
        QByteArray rows;
        for (const ImagePrediction &p : predictions.value()) {
            QStringList row{csvField(p.path)};
            for (int i = 0; i < k; ++i) {
                const bool has = i < p.top.size();
                row << (has ? csvField(classes.value(p.top[i].first)) : QString())
                    << (has ? QString::number(double(p.top[i].second), 'f', 6) : QString());
            }
            row << csvField(p.error);
            failed += p.error.isEmpty() ? 0 : 1;
            rows += row.join(u',').toUtf8() + '\n';
        }
        written += chunk.size();
        chunk.clear();
        return out.write(rows) == rows.size();
    };
    constexpr qsizetype kChunk = 256;
    for (const QString &arg : inputs) {
        if (!QFileInfo(arg).isDir()) {
            chunk.append(arg);
        } else {
            QDirIterator it(arg, QDir::Files,
                            QDirIterator::Subdirectories | QDirIterator::FollowSymlinks);
            while (it.hasNext()) {
                const QString path = it.next();
                if (!hasImageExtension(QFileInfo(path).fileName().toStdString()))
                    continue;
                chunk.append(path);
                if (chunk.size() >= kChunk && !flush())
                    return kExitFailure;
            }
        }
        if (chunk.size() >= kChunk && !flush())
            return kExitFailure;
    }
    if (!flush())
        return kExitFailure;
    if (!out.commit()) {
        printError(QStringLiteral("cannot write “%1”: %2").arg(csv, out.errorString()));
        return kExitFailure;
    }
    printErr(QStringLiteral("%1 images → %2 (%3 unreadable)").arg(written).arg(csv).arg(failed));
    return failed == 0 ? kExitOk : kExitFailure;
}

/// --model names an exported model (model.pt / model.onnx) rather than an architecture.
bool isExportedModel(const QString &value)
{
    return (value.endsWith(u".pt") || value.endsWith(u".onnx")) && QFileInfo(value).isFile();
}

} // namespace

int runPredict(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Predict the classes of images (files, or folders searched recursively) with a "
        "checkpoint's val transform, or with an exported model (--model model.pt|model.onnx): "
        "the top-k classes and their probabilities. With --csv, one row per image is written as "
        "the folder is walked, for folders of any size."));
    parser.addOption(helpOption());
    parser.addOption({{QStringLiteral("topk"), QStringLiteral("top-k")},
                      QStringLiteral("classes per image (default 5)"),
                      QStringLiteral("K")});
    parser.addOption({QStringLiteral("csv"),
                      QStringLiteral("write path, top-k classes and probabilities to this CSV"),
                      QStringLiteral("OUT.csv")});
    addModelOptions(parser);
    addCamOptions(parser);
    parser.addPositionalArgument(QStringLiteral("IMAGE"), QStringLiteral("images or folders"),
                                 QStringLiteral("IMAGE..."));
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    configureRuntime(requestedThreads());
    for (const QString &arg : parser.positionalArguments()) {
        if (!QFileInfo::exists(arg)) {
            printError(QStringLiteral("“%1” does not exist").arg(arg));
            return kExitFailure;
        }
    }
    if (parser.positionalArguments().isEmpty()) {
        printError(QStringLiteral("no images given (files or folders of .jpg, .png, …)"));
        return kExitUsage;
    }
    int topk = 5;
    QString error;
    if (!parseOption(parser, QStringLiteral("topk"), topk, error) || topk < 1) {
        printError(error.isEmpty() ? QStringLiteral("--topk must be at least 1") : error);
        return kExitUsage;
    }
    const QString model = parser.value(QStringLiteral("model"));
    auto classifier = isExportedModel(model) && !parser.isSet(QStringLiteral("checkpoint"))
        ? Classifier::loadExported(model)
        : loadClassifier(parser);
    if (!classifier) {
        printError(classifier.errorMessage());
        return kExitFailure;
    }
    if (parser.isSet(QStringLiteral("csv")))
        return predictToCsv(classifier.value(), parser.positionalArguments(), topk,
                            parser.value(QStringLiteral("csv")));
    return printPredictions(parser, classifier.value(), topk);
}

} // namespace ifs::cli
