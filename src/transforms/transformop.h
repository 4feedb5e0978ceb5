#pragma once

// The kit for writing a transform (one file under ops/, listed in ops/ops.h): the prepared op
// the engine runs, the run state it works on, the readers that check arguments as torchvision's
// constructors do, and the walk that the advice hooks extend. Only the engine, the advice and the
// ops include it; the rest of the program sees transforms.h and transformregistry.h.

#include "image/pilops.h"
#include "transforms/transformadvice.h"
#include "transforms/transformregistry.h"
#include "transforms/transforms.h"

#include <QList>
#include <QPointF>
#include <QRectF>
#include <QSize>
#include <QString>

#include <array>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

namespace ifs {

class PythonRandom;
class TorchGenerator;

namespace ops {

using V = TransformValue;

// ---- Errors ---------------------------------------------------------------------------------

/// Thrown by prepare() and apply() with what is wrong; CompiledPipeline::compile() and run()
/// turn it into an Error that names the step ("Step 2, Resize: ...").
struct StepError
{
    QString message;
    /// OutOfMemory when the step's output would not fit the run's memory bound.
    ErrorCode code = ErrorCode::Failed;
};

/// Throws StepError{message}.
[[noreturn]] void fail(const QString &message);

// ---- Signatures -----------------------------------------------------------------------------

/// A parameter without default.
TransformParameter req(const QString &name, const ParameterHint &hint = {});
/// A parameter with a default.
TransformParameter opt(const QString &name, const V &defaultValue, const ParameterHint &hint = {});
/// An int edited with a spin box from minimum to maximum.
ParameterHint integerHint(int minimum, int maximum);
/// A string edited as a choice of these.
ParameterHint choiceHint(const QStringList &choices);
/// padding_mode='constant', offered as a choice of torchvision's four modes.
TransformParameter paddingModeParameter();
/// antialias=None, offered as None / True / False (PIL always antialiases; the engine ignores it).
TransformParameter antialiasParameter();
/// A tuple of two floats, e.g. scale=(0.08, 1.0).
V floatPair(double a, double b);
/// A tuple of floats, e.g. a per-channel mean.
V floatTuple(std::initializer_list<double> values);
/// A positional argument.
TransformArgument positional(const V &value);

// ---- Arguments ------------------------------------------------------------------------------

/// A (min, max) range as written, not reordered.
struct Range
{
    double lo = 0.0;
    double hi = 0.0;
};

/// A bound step's arguments by parameter name, every default filled in.
class OpArguments
{
public:
    /// `bound` as normalizeStep() gives it: required parameters positional, the rest by keyword.
    OpArguments(const TransformDefinition &definition, const TransformStep &bound);

    /// The value of the parameter called name (None for names the signature lacks).
    const V &operator[](QStringView name) const;

private:
    QList<std::pair<QString, V>> m_values;
};

// Readers of one value that fail as torchvision's checks do; `what` names it in messages.
bool isNumber(const V &v);
bool isSequence(const V &v);
double number(const V &v, const QString &what);
int integer(const V &v, const QString &what);
bool boolean(const V &v, const QString &what);
std::vector<double> numbers(const V &v, const QString &what);
/// A (min, max) pair.
Range pair(const V &v, const QString &what);
/// torchvision's _setup_size: an int, or a sequence of one or two ints, as (h, w).
std::vector<int> sizePair(const V &v, const QString &what);
/// `input` with the fixed output size `size` ([h, w], from sizePair()): the shape a crop or a
/// resize to a given size makes, whatever the input's size.
DataShape withFixedSize(const DataShape &input, const std::vector<int> &size);
/// An InterpolationMode (or PIL's deprecated integer constant) as a PIL filter.
pil::Filter interpolation(const V &v);
/// fill: None (0), a number, or one value per channel.
std::vector<double> fillValues(const V &v);
pil::PadMode padMode(const V &v);
/// F.pad's padding: an int, or 1, 2 (left/right, top/bottom) or 4 (left, top, right, bottom)
/// values, as left, top, right, bottom.
std::array<int, 4> paddingLtrb(const V &v);
/// torchvision's _setup_angle: a number x means (-x, x).
Range angleRange(const V &v, const QString &what);
/// p, checked to lie in [0, 1].
double probability(const V &v);

// ---- Running --------------------------------------------------------------------------------
// A container transform (RandomApply([...]), RandomChoice, RandomOrder) prepares the steps in its
// arguments with prepareStep() and applies them on the run it is given, each with a trace of its
// own (tst_transformregistry's Sequence shows the pattern).

/// Where the current image's pixels came from in the pipeline's input, to draw crop boxes.
struct CoordMap
{
    struct Axis
    {
        double scale = 1.0;
        double offset = 0.0;
        double map(double x) const { return scale * x + offset; }
    };
    Axis x, y;
    bool valid = true; ///< false after a rotation or affine: no box is drawn any more

    void crop(double left, double top);
    void resize(QSize from, QSize to);
    void flipX(int width);
    void flipY(int height);
    QRectF region(double left, double top, double w, double h) const;
};

/// One run of a pipeline as the steps see it: the data flowing through, the generator to draw
/// from (in torchvision's order: the draws are the contract with Python), the coordinate map and
/// the trace of the step being applied, which apply() fills (summary, applied, regionInInput).
struct RunState
{
    TorchGenerator &rng;
    TransformData data;
    CoordMap coords;
    StepTrace *trace = nullptr;
    /// The most memory a step's output may take (CompiledPipeline::memoryBound()).
    qint64 memoryBound = std::numeric_limits<qint64>::max();
    /// Memory the run holds besides the step's input and output: the traced outputs so far.
    qint64 keptBytes = 0;
    /// Python's `random`, made on first use (python()).
    std::shared_ptr<PythonRandom> pythonRandom{};

    /// Python's `random` module as RandomOrder and RandomChoice draw from it, seeded with the
    /// torch generator's seed on first use (`random.seed(s)` next to `torch.manual_seed(s)`).
    PythonRandom &python();

    QSize size() const { return data.size(); }
    /// Fails, before anything is allocated, when an output of this shape would not fit the
    /// memory bound. Every op that makes data larger than its input calls it first (crop, pad
    /// and resizeTo below already do).
    void checkMemory(const DataShape &output) const;
    /// Fails unless the data is still a PIL image.
    void requireImage() const;
    /// Fails unless the data is a tensor.
    void requireTensor() const;
    /// Sets the trace's regionInInput to this region of the current data.
    void setRegion(double left, double top, double w, double h);
    /// Crops image or tensor (outside the tensor: zeros) and records the region.
    void crop(int top, int left, int h, int w);
    /// Resizes the image with PIL's filter; a no-op at the same size, as F.resize.
    void resizeTo(int h, int w, pil::Filter filter);
    /// Pads image or tensor (tensors take one fill value).
    void pad(const std::array<int, 4> &ltrb, pil::PadMode mode, const std::vector<double> &fill);
    /// torch.rand(1) < p: a float32 draw compared with p in float32.
    bool coin(double p);
};

/// Why a step's output does not fit the memory bound: "its output, PIL Image RGB 60000 × 60000,
/// would take 10.1 GiB, more than the 5.7 GiB one run may use here".
QString memoryRefusal(const DataShape &output, qint64 keptBytes, qint64 bound);

/// Python's round() (half to even) of a double to an int.
int pyRound(double x);
/// A number for a trace summary: four significant digits.
QString fmt(double x);
int channelsOf(const QImage &image);
/// F_pil._parse_fill: one value is repeated, else one per channel; values truncated to int.
pil::Fill pilFill(const std::vector<double> &fill, int channels);
/// F._get_inverse_affine_matrix(center, angle, translate, scale, shear) as the PIL branch of
/// F.affine uses it (degrees in, PIL's AFFINE data out).
std::array<double, 6> inverseAffineMatrix(QPointF center, double angle, int tx, int ty,
                                          double scale, double shearX, double shearY);
/// F.rgb_to_grayscale of the image or tensor with outChannels (1 or 3) channels.
void convertToGray(RunState &run, int outChannels);

/// What the batch loader's fused path (CompiledPipeline::resizedCropPlan()) and the preview can
/// take a prepared step for; most steps are none of these.
namespace fused {
struct ResizedCrop
{
    int outHeight = 0;
    int outWidth = 0;
    Range scale;
    Range ratio;
    pil::Filter filter = pil::Filter::Bilinear;
};
struct HorizontalFlip
{
    double p = 0.5;
};
struct ToTensor
{
};
struct Normalize
{
    std::vector<float> mean, std;
};
} // namespace fused
using FusedPart = std::variant<std::monostate, fused::ResizedCrop, fused::HorizontalFlip,
                               fused::ToTensor, fused::Normalize>;

/// One step with its arguments checked and prepared. Immutable and shared between copies of a
/// CompiledPipeline, so apply() must not change it (runs happen on several threads at once).
class PreparedOp
{
public:
    virtual ~PreparedOp() = default;
    /// Transforms run.data and fills run.trace (summary, applied, regionInInput); throws
    /// StepError for what torchvision would refuse. The input kind is already checked.
    virtual void apply(RunState &run) const = 0;
    /// What a fused path may take this step for.
    virtual FusedPart fusedPart() const { return {}; }
    /// The shape of the output for an input of this shape (see CompiledPipeline::outputShape);
    /// the default is a step that keeps the shape.
    virtual DataShape outputShape(const DataShape &input) const { return input; }
};

/// A prepared step with the definition it came from.
struct PreparedStep
{
    const TransformDefinition *definition = nullptr;
    std::shared_ptr<const PreparedOp> op;

    /// Checks the input kind (definition->input), then applies the op.
    void apply(RunState &run) const;
};

/// A `RandomX(..., p)` step on PIL images: `if torch.rand(1).item() < p: img = F.x(img)`
/// (RandomInvert, RandomPosterize, RandomSolarize, RandomAdjustSharpness, RandomAutocontrast,
/// RandomEqualize).
class CoinImageOp final : public PreparedOp
{
public:
    using Function = QImage (*)(const QImage &image, double argument);
    double p = 0.5;
    Function function = nullptr;
    double argument = 0.0;
    /// What the trace says when applied, e.g. "inverted"; "%1" is the argument.
    QString done;
    /// Checked when applied, as torchvision checks then: empty when the argument is good.
    QString refusal;

    void apply(RunState &run) const override;
};

/// Prepares a bound step (normalizeStep()'s output) with its definition; throws StepError.
/// CompiledPipeline::compile() calls it per step, and a container op calls it for the steps in
/// its arguments.
PreparedStep prepareStep(const TransformStep &bound);

/// The steps of a container's `transforms` argument (a list or tuple of nested calls, a nested
/// Compose([...]) as one step), prepared; throws StepError naming the nested step.
std::vector<PreparedStep> prepareNested(const V &transforms);

/// Applies nested steps in this order on the run (each with a trace of its own) and returns
/// what they did, for the container's summary: "ColorJitter(brightness 1.1), RandomGrayscale
/// (kept colour)". A crop's region is passed on to the container's trace; a nested step's
/// error names it.
QString applyNested(RunState &run, const std::vector<const PreparedStep *> &steps);

/// The output shape after nested steps that may or may not run: the input's when they keep it,
/// else the largest of the possibilities as an upper bound (not exact).
DataShape nestedOutputShape(const DataShape &input,
                            const std::vector<std::vector<const PreparedStep *>> &possibilities);

// ---- Advice ---------------------------------------------------------------------------------

/// The value of a parameter of a step, by name: the argument given or the signature's default.
V stepArgument(const TransformStep &step, const QString &name);
/// The numbers of a number or of a sequence (its non-numbers skipped).
std::vector<double> numberList(const V &v);
/// (h, w) of a size given as an int or a one/two element sequence, as a QSize; nullopt otherwise.
std::optional<QSize> sizeArgument(const V &v);
/// "500×375"
QString sizeText(QSize size);

/// reviewPipeline()'s walk through a pipeline: what is known statically at the current step,
/// which the review hooks update, and the findings so far.
struct AdviceWalk
{
    using Severity = PipelineAdvice::Severity;

    const TransformPipeline &pipeline;
    PipelineRole role;
    const DatasetTraits &traits;

    /// The size every image has here, when it is the same for all and known.
    std::optional<QSize> size{};
    int channels = 3; ///< torchvision's loader converts to RGB
    bool tensor = false; ///< a ToTensor ran
    bool resized = false; ///< a Resize chose the size on purpose
    int toTensorStep = -1; ///< the last ToTensor
    int normalizeStep = -1; ///< the last Normalize
    /// What to say when the images still differ in size at the end, set by the last step that
    /// leaves them different on purpose (Resize(int) keeps each aspect ratio), with its fix.
    std::optional<PipelineAdvice> unequalSizes{};
    QList<PipelineAdvice> advice{};

    /// Adds a finding and returns it, to attach a fix.
    PipelineAdvice *add(Severity severity, int step, const QString &message);
    /// For a crop or resize to `target` before any Resize: says when it blows the images up
    /// three times or more.
    void noteUpscale(int index, const QString &name, QSize target);
    /// For a step that takes tensors only: an error with the fix (move the next ToTensor here, or
    /// insert one) when no ToTensor came before it.
    void requireTensor(int index, const QString &name);
};

/// The review hook of the containers (RandomApply, RandomChoice, RandomOrder): reviews the
/// nested transforms at the container's index; the size is forgotten when they may change it.
void reviewNested(AdviceWalk &walk, int index, const TransformStep &step);

} // namespace ops
} // namespace ifs
