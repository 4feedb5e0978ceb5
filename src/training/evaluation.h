#pragma once

// Evaluating and using a trained classifier: per-image predictions, the confusion matrix,
// per-class precision/recall/F1, misclassified images ranked by loss or confidence, and top-k
// prediction for single images or folders. Torch-free header: the GUI and the CLI use it
// without including libtorch; the implementation is in ifs_torch.

#include "base/result.h"
#include "transforms/batchloader.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace ifs {

/// One validation image as the model saw it.
struct SamplePrediction
{
    int sampleIndex = -1; ///< index in the evaluated sample list
    QString path;
    int label = -1;
    int predicted = -1;
    float confidence = 0.f; ///< softmax probability of `predicted`
    float labelProbability = 0.f; ///< softmax probability of the true label
    float loss = 0.f; ///< cross-entropy of this image (no label smoothing)
    bool correct() const { return predicted == label; }
};

struct ClassMetrics
{
    double precision = 0.0; ///< 0 when nothing was predicted as this class
    double recall = 0.0; ///< 0 when the class has no images
    double f1 = 0.0;
    qint64 support = 0; ///< images of this class
    qint64 predictedCount = 0;
};

/// The result of running a model over labelled images.
struct Evaluation
{
    QStringList classes;
    QList<SamplePrediction> predictions; ///< in the order of the evaluated samples
    std::vector<qint64> confusion; ///< classes² counts, row = true class, column = predicted
    QList<ClassMetrics> perClass;
    double accuracy = 0.0; ///< fraction correct, 0..1
    double loss = 0.0; ///< mean cross-entropy
    double macroF1 = 0.0;
    QList<LoaderFailure> failures; ///< images that could not be evaluated

    qint64 count(int trueClass, int predictedClass) const;
    /// The predictions in one confusion cell, in sample order.
    QList<SamplePrediction> cell(int trueClass, int predictedClass) const;

    enum class Ranking { HighestLoss, MostConfident, LeastConfident };
    /// The wrong predictions, worst first.
    QList<SamplePrediction> misclassified(Ranking ranking = Ranking::HighestLoss) const;

    /// Fills confusion, perClass, accuracy, loss and macroF1 from classes and predictions.
    void computeSummary();

    /// Text reports for the CLI: a per-class table and the confusion matrix.
    QString classReportText() const;
    QString confusionText() const;
};

/// Top-k classes for one image.
struct ImagePrediction
{
    QString path;
    QList<std::pair<int, float>> top; ///< class index, probability; most likely first
    QString error; ///< set when the image could not be read
};

enum class AmpMode; // training.h

struct ClassifierOptions
{
    /// Where to run: "auto" (CUDA when available), "cpu", "cuda", "cuda:N".
    QString device = QStringLiteral("auto");
    /// Architecture for checkpoints that do not say it (a bare state dict from a Python script).
    QString arch;
    /// The val transform's torchvision source for checkpoints without 'transforms'.
    QString valTransforms;
    /// Class names for checkpoints without 'class_to_idx' (else "0", "1", ...).
    QStringList classes;
    int threads = 0;
    /// Mixed precision of the forward pass (resolveAmp() in training.h): Off computes in float32
    /// as Python's model(x); Auto and BFloat16 autocast to bf16 where it applies, as a run's
    /// validation does. Off by default: evaluation reproduces a float32 Python evaluation.
    AmpMode amp{}; ///< AmpMode::Off (training.h declares the values)
};

/// A trained model loaded from a checkpoint for evaluation and prediction: our own checkpoints
/// (arch, class_to_idx and transforms inside) or any state dict of a known architecture. Never
/// executes code from the file. Not thread-safe: use one thread at a time.
class Classifier
{
public:
    static Result<Classifier> load(const QString &checkpointPath,
                                   const ClassifierOptions &options = {});
    /// A model exported by exportModel(): TorchScript (`model.pt`, run with libtorch) or ONNX
    /// (`model.onnx`, run with OpenCV's dnn module), with the classes and the val transform it
    /// carries (its labels.json and preprocessing.json). Only predict() runs it.
    static Result<Classifier> loadExported(const QString &modelPath,
                                           const ClassifierOptions &options = {});
    Classifier(Classifier &&) noexcept;
    Classifier &operator=(Classifier &&) noexcept;
    ~Classifier();

    QString arch() const;
    QStringList classes() const;
    QString device() const;
    QString valTransforms() const;
    /// Facts about the load: repaired prefixes, where the transforms came from.
    QStringList notes() const;

    /// Runs the val transform and the model over `samples` (labels required) in batches.
    /// `progress(done, total)` is called from the calling thread; `cancel` is polled per batch.
    Result<Evaluation> evaluate(const std::vector<LoaderSample> &samples, int batchSize = 128,
                                int workers = 0,
                                const std::function<void(qint64, qint64)> &progress = {},
                                const std::atomic_bool *cancel = nullptr);

    /// Top-k for each image (unreadable ones get an error, not a failure of the call).
    Result<QList<ImagePrediction>> predict(const QStringList &imagePaths, int topk = 5);

private:
    Classifier();
    struct Impl;
    std::unique_ptr<Impl> d;
    friend struct ClassifierInternals; // torch/classifierimpl.h: Grad-CAM works on the model
};

} // namespace ifs
