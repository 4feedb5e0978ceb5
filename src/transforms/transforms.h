#pragma once

// The transform engine: runs a torchvision 0.14 pipeline (a TransformPipeline from
// transformspec.h) on an image with torchvision's semantics, PIL's pixels (pilops.h) and torch's
// random draws (torchrng.h), so that `torch.manual_seed(s); pipeline(img)` in Python and
// run(img, TorchGenerator(s)) here give the same result.

#include "base/result.h"
#include "image/pilops.h"
#include "transforms/transformspec.h"

#include <QImage>
#include <QList>
#include <QRectF>
#include <QSize>
#include <QString>

#include <memory>
#include <optional>
#include <vector>

namespace ifs {

class TorchGenerator;

/// A float32 tensor in C × H × W layout, contiguous: what ToTensor makes of an image.
struct ImageTensor
{
    int channels = 0;
    int height = 0;
    int width = 0;
    std::vector<float> data;

    bool isNull() const { return channels == 0; }
    qsizetype numel() const { return qsizetype(channels) * height * width; }
    float *plane(int c) { return data.data() + qsizetype(c) * height * width; }
    const float *plane(int c) const { return data.data() + qsizetype(c) * height * width; }
    float &at(int c, int y, int x) { return data[(qsizetype(c) * height + y) * width + x]; }
    float at(int c, int y, int x) const { return data[(qsizetype(c) * height + y) * width + x]; }
};

/// What flows between the steps: a PIL-like image before ToTensor, a tensor after it.
struct TransformData
{
    /// Before ToTensor: QImage::Format_RGB888 (PIL "RGB") or Format_Grayscale8 (PIL "L").
    QImage image;
    /// After ToTensor.
    ImageTensor tensor;
    /// > 0: a tuple of this many crops of equal size (FiveCrop, TenCrop), kept in `image` side by
    /// side from left to right, as the preview shows them.
    int crops = 0;

    bool isTensor() const { return !tensor.isNull(); }
    int channels() const;
    /// Width × height.
    QSize size() const;
    /// "PIL Image RGB 500×375" or "tensor float32 [3, 224, 224]".
    QString describe() const;
};

/// What one step of a run did.
struct StepTrace
{
    int step = -1; ///< index in the pipeline
    QString name; ///< the transform's class name
    bool applied = true; ///< false when a random choice left the input as it was
    /// The parameters it drew or used, for people: "i=31, j=12, h=212, w=174".
    QString summary;
    QSize inputSize;
    QSize outputSize;
    /// For crops: the region taken, in the coordinates of the pipeline's input image. Empty when
    /// the step does not crop or an earlier rotation/affine lost the mapping.
    QRectF regionInInput;
    /// The step's output; only filled when tracing.
    TransformData output;
};

/// What a step's output will be, known before running it: the shape of an image or a tensor.
/// CompiledPipeline::outputShape() walks a pipeline with it, and a run checks each step's output
/// against its memory bound before allocating it.
struct DataShape
{
    int channels = 3;
    qint64 width = -1; ///< -1: not known before running (it depends on the input)
    qint64 height = -1;
    bool tensor = false;
    /// false: width and height are an upper bound (a size that depends on a random draw).
    bool exact = true;

    bool sizeKnown() const { return width >= 0 && height >= 0; }
    /// The memory the data takes: 8-bit rows padded to 4 bytes (QImage) for an image, float32
    /// values for a tensor; saturates instead of overflowing. -1 when the size is not known.
    qint64 bytes() const;
    /// As TransformData::describe() says it: "PIL Image RGB 500 × 375" or
    /// "tensor float32 [3, 224, 224]".
    QString describe() const;

    /// The shape of this data.
    static DataShape of(const TransformData &data);
};

/// The bound on the memory one run of a pipeline may use, unless set otherwise
/// (CompiledPipeline::setMemoryBound): a quarter of the memory this process can use.
qint64 defaultTransformMemoryBound();

/// The result of running a pipeline on one image.
struct TransformRun
{
    TransformData output;
    QList<StepTrace> steps;
};

/// RandomResizedCrop.get_params's result: the crop (top, left, height, width) in the image.
struct CropBox
{
    int top = 0;
    int left = 0;
    int height = 0;
    int width = 0;
    bool fallback = false; ///< ten draws missed: torchvision's central crop
};

/// RandomResizedCrop.get_params(img, scale, ratio) for a width × height image, drawing from rng
/// exactly as torchvision does (ten tries, then the central fallback).
CropBox sampleResizedCrop(int width, int height, double scaleLo, double scaleHi, double ratioLo,
                          double ratioHi, TorchGenerator &rng);

/// The common training pipeline `[RandomResizedCrop, RandomHorizontalFlip?, ToTensor,
/// Normalize?]`, spelt out so that a batch loader can fuse decoding, cropping, resizing and
/// normalising (see BatchLoader) while drawing the same random numbers in the same order.
struct ResizedCropPlan
{
    int outHeight = 0;
    int outWidth = 0;
    double scaleLo = 0.08, scaleHi = 1.0;
    double ratioLo = 0.75, ratioHi = 4.0 / 3.0;
    pil::Filter filter = pil::Filter::Bilinear;
    std::optional<double> flipP; ///< RandomHorizontalFlip(p), when present
    std::vector<float> mean, std; ///< Normalize, when present (else empty)
};

/// A pipeline checked and prepared for running. Cheap to copy; run() is const and thread-safe
/// (each call takes its own generator).
class CompiledPipeline
{
public:
    CompiledPipeline();
    ~CompiledPipeline();
    CompiledPipeline(const CompiledPipeline &);
    CompiledPipeline &operator=(const CompiledPipeline &);

    /// What compile() does with steps the engine cannot reproduce (TransformDefinition::
    /// unsupported: Lambda, AugMix, ...).
    enum class Unsupported {
        Refuse, ///< fail with the step's reason: training must not silently drop a step
        Skip, ///< run the rest: the step passes its input on, its trace says why (a preview)
    };

    /// Checks each step's arguments as torchvision's constructors do (types, ranges, lengths)
    /// and prepares them. Errors name the step: "Step 2, RandomResizedCrop: scale must be ...".
    static Result<CompiledPipeline> compile(const TransformPipeline &pipeline,
                                            Unsupported unsupported = Unsupported::Refuse);

    /// Runs the pipeline on an RGB (Format_RGB888) or gray (Format_Grayscale8) image; other
    /// formats are converted to RGB first. Random steps draw from rng in torchvision's order.
    /// With trace, every step's output is kept in the run's steps. Fails as torchvision would,
    /// with the step named (e.g. Normalize before ToTensor, a crop larger than the image).
    /// Fails too, before allocating it, on a step whose output would exceed memoryBound() (with
    /// trace: together with the outputs kept so far); what the sizes already tell refuses the
    /// run before its first step.
    Result<TransformRun> run(const QImage &image, TorchGenerator &rng, bool trace = false) const;

    /// The most memory a step's output may take in a run (bytes). Copies of a pipeline keep
    /// their own bound: a preview may use a tighter one than training.
    void setMemoryBound(qint64 bytes);
    qint64 memoryBound() const;

    /// The shape of the output for an input of this shape, as far as it is known before
    /// running: exact for fixed sizes (Resize((h, w)), crops), unknown when it follows the input
    /// and the input's size is not given, an upper bound for random sizes (expanding rotations).
    DataShape outputShape(const DataShape &input) const;

    const TransformPipeline &pipeline() const;
    bool isEmpty() const;
    /// Whether any step draws random numbers.
    bool isRandom() const;

    /// mean and std of the last Normalize step (empty when there is none), to show its output
    /// denormalised.
    std::vector<float> normalizeMean() const;
    std::vector<float> normalizeStd() const;

    /// The pipeline as a ResizedCropPlan when it has exactly that shape.
    std::optional<ResizedCropPlan> resizedCropPlan() const;

private:
    /// Refuses a run whose steps' outputs, as far as the sizes tell before running, exceed the
    /// memory bound.
    Status checkSizes(const DataShape &input, bool trace) const;

    struct Impl;
    std::shared_ptr<const Impl> d;
    qint64 m_memoryBound;
};

/// How images enter a pipeline.
struct LoadOptions
{
    /// Apply the EXIF orientation (PIL's ImageOps.exif_transpose). torchvision's loader does not,
    /// so the default is off.
    bool applyExifOrientation = false;
};

/// Loads an image as torchvision's default loader does (PIL `convert("RGB")`), optionally turned
/// upright by its EXIF orientation.
Result<QImage> loadTransformInput(const QString &path, const LoadOptions &options = {});

/// ToTensor: a uint8 image to a float32 C × H × W tensor in [0, 1].
ImageTensor imageToTensor(const QImage &image);

/// An 8-bit image of a 1- or 3-channel tensor, for display and PNG files: undoes Normalize
/// first when mean and std are given (x * std + mean), then clamps to [0, 1] and rounds
/// x * 255 to the nearest integer. Returns a null image for other channel counts.
QImage tensorToImage(const ImageTensor &tensor, const std::vector<float> &mean = {},
                     const std::vector<float> &std = {});

/// Per-channel statistics of a tensor, shown under a preview.
struct ChannelStats
{
    std::vector<double> mean;
    std::vector<double> std; ///< population standard deviation
    std::vector<double> min;
    std::vector<double> max;
};
ChannelStats tensorStats(const ImageTensor &tensor);

} // namespace ifs
