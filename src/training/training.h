#pragma once

// Training a classifier on an ImageFolder dataset: the same loop for the GUI's worker thread and
// the CLI. Torch-free header; the implementation (training.cpp) is in ifs_torch.
//
// A run folder holds config.json, metrics.csv (one row per epoch), steps.csv (one row per
// optimizer step), last.pth (every epoch, atomic) and best.pth (best validation accuracy),
// epoch_NNN.pth when saveEveryEpochs is set, and load_model.py (the model rebuilt in Python,
// SmallCNN's definition included, loading last.pth). While a run writes there the folder is
// locked (.ifstudio-run.lock, runfolder.h): another run on it fails at once, naming the holder.
// The .pth files are torch.save zips in the layout Python training scripts use:
//
//     {'model_state_dict': OrderedDict, 'optimizer_state_dict': {'state': {...}, 'param_groups':
//      [...]}, 'scheduler_state_dict': {...}, 'epoch': int, 'step': int, 'class_to_idx': {...},
//      'arch': str, 'num_classes': int, 'transforms': {'train': str, 'val': str},
//      'metrics': {...}, 'rng_state': ByteTensor, 'config': {...}}

#include "base/result.h"
#include "training/distributed.h"
#include "training/evaluation.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace ifs {

enum class OptimizerKind { SGD, Adam, AdamW };
enum class ScheduleKind { Constant, Step, Cosine, OneCycle };
/// Mixed precision. Auto: bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 or AMX) for
/// the architectures and inputs where it measured faster (ampAutoRule()), float32 otherwise and
/// on CUDA. BFloat16 works on CUDA and the CPU; Float16 (with a loss scale) is CUDA only.
enum class AmpMode { Off, BFloat16, Float16, Auto };
/// Which parameters train: Full (all), Head (the backbone frozen: no gradients, its BatchNorm
/// and stochastic-depth layers in eval mode, only the head in the optimizer), HeadThenFull (Head
/// for the first unfreezeEpoch epochs, then Full). The head is ModelArch::headPrefix.
enum class FinetuneMode { Full, Head, HeadThenFull };
/// The images' and weights' memory layout. Auto: channels_last, on CUDA and on the CPU, where it
/// measured faster for every benchmarked model once glibc's malloc was really tuned (see the
/// README).
enum class MemoryFormat { Auto, ChannelsLast, Contiguous };
/// Class weights in the loss. InverseFrequency: weight_c = N / (C × n_c) over the training split
/// (scikit-learn's "balanced"), as `nn.CrossEntropyLoss(weight=...)`; a class without training
/// images gets 0.
enum class ClassWeighting { None, InverseFrequency };
/// The training order. Shuffle: a permutation per epoch. Weighted: torch.utils.data.
/// WeightedRandomSampler(1 / n_class per sample, num_samples = the training set's size,
/// replacement=True), each epoch drawn with its own generator (BatchLoader::epochOrderSeed()).
enum class SamplerKind { Shuffle, Weighted };
/// Early stopping's metric: none (Off), validation accuracy (higher is better) or loss.
enum class EarlyStopMetric { Off, ValAccuracy, ValLoss };

/// "sgd", "adam", "adamw" / "constant", "step", "cosine", "onecycle" / "off", "bf16", "fp16".
QString optimizerName(OptimizerKind kind);
QString scheduleName(ScheduleKind kind);
QString ampName(AmpMode mode); ///< "auto" for Auto
/// "full", "head", "head-then-full".
QString finetuneName(FinetuneMode mode);
/// "auto", "channels_last", "contiguous".
QString memoryFormatName(MemoryFormat format);
/// "none", "balanced" (also read: "inverse-frequency") / "shuffle", "weighted" / "off",
/// "val_acc", "val_loss".
QString classWeightingName(ClassWeighting weighting);
QString samplerName(SamplerKind sampler);
QString earlyStopName(EarlyStopMetric metric);
std::optional<ClassWeighting> classWeightingFromName(const QString &name);
std::optional<SamplerKind> samplerFromName(const QString &name);
std::optional<EarlyStopMetric> earlyStopFromName(const QString &name);
std::optional<OptimizerKind> optimizerFromName(const QString &name);
std::optional<ScheduleKind> scheduleFromName(const QString &name);
std::optional<AmpMode> ampFromName(const QString &name);
std::optional<FinetuneMode> finetuneFromName(const QString &name);
std::optional<MemoryFormat> memoryFormatFromName(const QString &name);
/// Whether `format` means channels_last on a CUDA device (`cuda` true) or the CPU.
bool usesChannelsLast(MemoryFormat format, bool cuda);
/// scikit-learn's compute_class_weight("balanced"): N / (C × n_c) for the class counts
/// `counts` (N their sum, C their number); 0 for a class without images.
std::vector<double> balancedClassWeights(const std::vector<qint64> &counts);
/// The loss training computes for one batch: torch 1.13's F.cross_entropy(logits, labels,
/// weight=weights (empty: none), label_smoothing=smoothing), mean reduction (with weights, the
/// sum divided by the sum of the targets' weights). `logits` holds labels.size() rows of
/// `classes` values, row-major. For tests and tools; the run computes it on tensors.
double trainingLoss(const std::vector<float> &logits, const std::vector<int64_t> &labels,
                    int classes, const std::vector<double> &weights, double smoothing);

/// What a requested AMP mode means for a run: the mode in effect (Off, BFloat16 or Float16) and
/// a sentence saying why, for the start notes.
struct AmpChoice
{
    AmpMode mode = AmpMode::Off;
    QString note;
};
/// Resolves `requested` for `arch` on CUDA or the CPU, whose native bf16 support `cpuBf16`
/// says (cpuHasNativeBf16() in base/cpufeatures.h). Auto picks bf16 on the CPU by ampAutoRule().
AmpChoice resolveAmp(AmpMode requested, const QString &arch, bool cuda, bool cpuBf16);
/// Auto's rule on a CPU with native bf16: whether bf16 autocast is expected to be faster than
/// float32 for `arch`, by measurement with bench/ (README, "bf16 on the CPU"). Every
/// architecture measured so far gains (small_cnn 1.47x, resnet18 at 112 px 1.21x); one measured
/// slower is listed in the rule and trains in float32 under Auto.
bool ampAutoRule(const QString &arch);

struct TrainConfig
{
    // Data
    QString dataRoot; ///< an ImageFolder root, or a root with train/ and val/ folders
    QString valRoot; ///< explicit validation ImageFolder; empty: the split's, else valSplit
    double valSplit = 0.1; ///< fraction held out (seeded, per class) without a val folder
    QString trainTransforms; ///< torchvision source; empty: defaultPipelines() for the dataset
    QString valTransforms;
    int batchSize = 64;
    int workers = 0; ///< input threads; 0 = all cores
    bool dropLast = true; ///< drop the last incomplete training batch

    // Model
    QString arch = QStringLiteral("small_cnn");
    QString weightsPath; ///< start from these weights; the head is re-initialised when it differs
    /// Start from torchvision's ImageNet weights for `arch` (training/pretrained.h): "" (none),
    /// "IMAGENET1K_V1", "IMAGENET1K_V2" or "DEFAULT"; found in torch.hub's cache or downloaded.
    /// Empty transforms then get the weights' own preprocessing.
    QString pretrained;
    FinetuneMode finetune = FinetuneMode::Full;
    int unfreezeEpoch = 1; ///< HeadThenFull: the head alone for this many epochs, then all
    /// The backbone's learning rate is lr × this (its own parameter group; the schedule scales
    /// both groups). 1: one group, as without fine-tuning.
    double backboneLrFactor = 1.0;
    /// While the backbone is frozen, compute its features once and train the head on them: the
    /// validation set's always, the train set's when its pipeline draws no random numbers (the
    /// same images every epoch). The result equals training on images up to float rounding.
    bool cacheFeatures = true;

    // Optimisation
    int epochs = 5;
    OptimizerKind optimizer = OptimizerKind::SGD;
    double lr = 0.1;
    double momentum = 0.9;
    bool nesterov = false;
    double weightDecay = 5e-4;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    ScheduleKind schedule = ScheduleKind::Cosine;
    double warmupEpochs = 0.0; ///< linear warm-up from lr/100 (not for onecycle, which has its own)
    int stepEpochs = 30; ///< step schedule: multiply by stepGamma every stepEpochs
    double stepGamma = 0.1;
    double labelSmoothing = 0.0;
    double gradClipNorm = 0.0; ///< 0 = no clipping
    ClassWeighting classWeighting = ClassWeighting::None;
    /// The class weights in effect: filled by the run (recorded in config.json, so that Python
    /// can rebuild the criterion); recomputed from the training split on every run.
    std::vector<double> classWeights;
    SamplerKind sampler = SamplerKind::Shuffle;
    /// Stops after `patience` epochs in which the metric did not improve on its best by more
    /// than `minDelta` (in the metric's units: accuracy as a fraction 0..1, loss as it is), as
    /// a completed run. Needs validation images.
    EarlyStopMetric earlyStopping = EarlyStopMetric::Off;
    int patience = 5;
    double minDelta = 0.0;
    uint64_t seed = 0;

    // Device
    QString device = QStringLiteral("auto"); ///< auto | cpu | cuda | cuda:N
    MemoryFormat memoryFormat = MemoryFormat::Auto;
    /// Auto by default. A run records the mode in effect (config.json, checkpoints), which an
    /// exact resume keeps unless it asks for another.
    AmpMode amp = AmpMode::Auto;
    /// libtorch intra-op threads; 0 = leave as set. A run records the count in effect (in
    /// config.json and its checkpoints), which an exact resume restores unless it sets one.
    int threads = 0;

    // Output
    QString outDir; ///< the run folder; created when missing
    int saveEveryEpochs = 0; ///< also keep epoch_NNN.pth every N epochs; 0 = never

    // Resume
    QString resumePath; ///< a last.pth/best.pth of ours
    bool resumeWeightsOnly = false; ///< new optimizer and schedule, epochs counted from 0

    /// Stops after this many optimizer steps in total, as if Save and Stop was pressed: a
    /// last.pth with the exact position is written (tests, benches, `--max-steps`).
    qint64 maxSteps = 0;

    /// This process's place in a data-parallel run started by torchrun (distributed.h): one
    /// rank of several, each training on its DistributedSampler share with `batchSize` images
    /// per step, gradients averaged as DistributedDataParallel does; only rank 0 writes. Not
    /// part of the settings a run saves (its checkpoints record the world size).
    std::optional<DistEnv> distributed;

    QJsonObject toJson() const;
    /// Reads what toJson() wrote; unknown keys are ignored, bad values named in the error.
    static Result<TrainConfig> fromJson(const QJsonObject &json);
    /// Checks values and paths before a run: "batch size must be at least 1", ... Implemented in
    /// ifs_torch (it knows the registered models).
    Status validate() const;
};

/// One optimizer step (for the loss curve).
/// The settings an exact resume runs with: the run's own (`saved`), so that the trajectory
/// continues as it was, except for what belongs to this run (`current`): the data, where and
/// how fast to compute (device, memory format, workers), the run folder, the resume path,
/// the step limit and the processes of a data-parallel run, and at least `current.epochs`.
/// The thread count is the run's own unless `current` sets one (> 0): float sums round by
/// thread count, so another count continues the run, but not bit for bit. Likewise the AMP mode is
/// the run's own unless `current` asks for one other than Auto.
TrainConfig exactResumeConfig(const TrainConfig &saved, const TrainConfig &current);

struct StepRecord
{
    qint64 step = 0; ///< 1-based, over the whole run
    int epoch = 0; ///< 1-based
    double loss = 0.0;
    double lr = 0.0;
};

/// One finished epoch.
struct EpochRecord
{
    int epoch = 0; ///< 1-based
    qint64 step = 0;
    double trainLoss = 0.0;
    double trainAccuracy = 0.0; ///< 0..1, on the augmented training batches
    double valLoss = 0.0;
    double valAccuracy = 0.0; ///< 0..1
    double lr = 0.0; ///< at the end of the epoch
    double seconds = 0.0;
    double imagesPerSecond = 0.0; ///< training images per second of the epoch
};

/// A run's history, as its folder (or a checkpoint's 'metrics') tells it.
struct RunHistory
{
    QString folder;
    QString name; ///< the folder's name
    QList<EpochRecord> epochs;
    QList<StepRecord> steps;
};
/// Reads metrics.csv and steps.csv of a run folder (for overlays of earlier runs); a folder
/// without metrics.csv but with TensorBoard event files (a Python run's) is read from those
/// (readTensorBoardHistory(), training/tensorboardwriter.h).
Result<RunHistory> readRunHistory(const QString &folder);

/// What a checkpoint of ours holds, for the resume dialog (read without torch).
struct CheckpointSummary
{
    QString arch;
    int numClasses = 0;
    QStringList classes;
    int epoch = 0;
    qint64 step = 0;
    QString optimizer; ///< "SGD (lr 0.1, momentum 0.9)"; empty without optimizer state
    QString schedule;
    double bestValAccuracy = -1.0;
    QString trainTransforms, valTransforms;
    QJsonObject config; ///< the run's TrainConfig, when stored
    bool hasOptimizerState = false;
    bool hasRngState = false;
    bool midEpoch = false; ///< saved by "Save and stop" inside an epoch
    QStringList lines() const; ///< a readable summary, one fact per line
};
Result<CheckpointSummary> summarizeTrainingCheckpoint(const QString &path);

struct TrainStart
{
    QString arch; ///< the model trained (a resume's own, whatever the config said)
    QString device; ///< "cpu", "cuda:0"
    QString deviceNote; ///< why: "CUDA is not available in this libtorch build (CPU only)"
    QString runtime; ///< torchDescription(), threads, channels_last, AMP
    int threads = 0;
    QStringList classes;
    qsizetype trainSamples = 0;
    qsizetype valSamples = 0;
    int batchesPerEpoch = 0;
    int epochs = 0;
    int startEpoch = 1; ///< 1-based epoch the run starts with (>1 after a resume)
    qint64 startStep = 0; ///< steps already done
    QString inputPath; ///< BatchLoader::pathDescription()
    QString trainTransforms, valTransforms;
    QStringList notes; ///< weights load report, resume, val split, ...
    /// Notes worth acting on before the next run (also in notes): inputSizeNote()'s.
    QStringList advice;
    RunHistory history; ///< earlier epochs and steps (continued curves after a resume)
    /// A data-parallel run (TrainConfig::distributed): this process's rank, the number of
    /// processes, and a sentence for the start line ("2 processes (Gloo) × 64 images = global
    /// batch 128"); empty for one process.
    int rank = 0;
    int worldSize = 1;
    QString distributed;
};

struct StepProgress
{
    int epoch = 0;
    int batch = 0; ///< 1-based within the epoch
    int batches = 0; ///< per epoch
    qint64 step = 0; ///< 1-based, whole run
    qint64 totalSteps = 0;
    double loss = 0.0;
    double accuracy = 0.0; ///< of this batch, 0..1
    double lr = 0.0;
    double imagesPerSecond = 0.0; ///< recent average
    double etaSeconds = -1.0; ///< whole run; -1 while unknown
};

struct EpochReport
{
    EpochRecord record;
    bool best = false;
    QString lastCheckpoint;
    QString bestCheckpoint;
    std::shared_ptr<const Evaluation> evaluation; ///< on the validation set; null without one
    QList<LoaderFailure> newFailures; ///< images skipped for the first time
};

enum class TrainOutcome { Completed, Stopped, Failed };

struct TrainFinish
{
    TrainOutcome outcome = TrainOutcome::Failed;
    QString message; ///< what happened, for a status line or an error dialog
    int epochsDone = 0; ///< complete epochs
    qint64 steps = 0;
    double bestValAccuracy = -1.0;
    QString lastCheckpoint; ///< empty when none was written
    QString bestCheckpoint;
    QList<LoaderFailure> skippedImages; ///< every image skipped, once each
    /// Early stopping ended the run (a completed run; the message says why, with the best
    /// epoch and value).
    bool earlyStopped = false;
};

/// Hooks, called on the thread that runs Trainer::run(). Keep them quick (queue to the GUI).
struct TrainCallbacks
{
    std::function<void(const TrainStart &)> started;
    std::function<void(const QString &)> status; ///< "Evaluating…", "Saving last.pth…"
    std::function<void(const StepProgress &)> step;
    std::function<void(const EpochReport &)> epoch;
    /// pause() took effect: the loop waits between batches (every step before was reported)
    /// until resume() or stop().
    std::function<void()> held;
    /// Called exactly once, last, whatever happens (also after a failure before started()).
    std::function<void(const TrainFinish &)> finished;
};

/// Runs one training. Thread-safe controls: pause(), resume(), stop() from any thread.
class Trainer
{
public:
    explicit Trainer(TrainConfig config);
    ~Trainer();
    Trainer(const Trainer &) = delete;
    Trainer &operator=(const Trainer &) = delete;

    /// Trains on the calling thread until done, stopped or failed; returns what finished() got.
    TrainFinish run(const TrainCallbacks &callbacks = {});

    /// Holds the loop between batches until resume() (stop() also ends a pause).
    void pause();
    void resume();
    bool isPaused() const;
    /// Ends the run after the current batch. With `saveCheckpoint`, last.pth is written first with
    /// the exact position inside the epoch, so that a resume continues from there; without it,
    /// last.pth stays as the last complete epoch left it.
    void stop(bool saveCheckpoint = false);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

/// Resolves a device request as training does: the device string, and a sentence saying why
/// ("CUDA is not available in this libtorch build (CPU only)"). Fails for cuda:N without that GPU.
Result<std::pair<QString, QString>> resolveDevice(const QString &request);

} // namespace ifs
