// RandomPerspective(distortion_scale=0.5, p=0.5, interpolation=BILINEAR, fill=0): a random
// perspective warp with probability p.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <dlfcn.h>

#include <cmath>

namespace ifs::ops {

namespace {

using SgelsFn = void (*)(const char *trans, const int *m, const int *n, const int *nrhs, float *a,
                         const int *lda, float *b, const int *ldb, float *work, const int *lwork,
                         int *info, size_t transLength);

/// LAPACK's sgels from the liblapack.so.3 that torch links (the system's choice: reference
/// LAPACK or OpenBLAS): torch.linalg.lstsq(driver="gels") in float32 calls it, and its rounding
/// decides the coefficients' last bits, which move PIL's sample points.
SgelsFn systemSgels()
{
    static const SgelsFn fn = [] {
        void *lib = dlopen("liblapack.so.3", RTLD_NOW | RTLD_LOCAL);
        return lib ? reinterpret_cast<SgelsFn>(dlsym(lib, "sgels_")) : nullptr;
    }();
    return fn;
}

/// Gaussian elimination in double with partial pivoting, rounded to float32: what sgels gives
/// up to its last bits, for machines without LAPACK.
std::array<float, 8> solveDouble(const std::array<float, 64> &columnMajor,
                                 const std::array<float, 8> &rhs)
{
    double m[8][9];
    for (int r = 0; r < 8; ++r) {
        for (int c = 0; c < 8; ++c)
            m[r][c] = columnMajor[size_t(c * 8 + r)];
        m[r][8] = rhs[size_t(r)];
    }
    for (int c = 0; c < 8; ++c) {
        int pivot = c;
        for (int r = c + 1; r < 8; ++r)
            if (std::abs(m[r][c]) > std::abs(m[pivot][c]))
                pivot = r;
        std::swap(m[c], m[pivot]);
        if (m[c][c] == 0.0)
            continue;
        for (int r = 0; r < 8; ++r) {
            if (r == c)
                continue;
            const double f = m[r][c] / m[c][c];
            for (int k = c; k < 9; ++k)
                m[r][k] -= f * m[c][k];
        }
    }
    std::array<float, 8> x{};
    for (int r = 0; r < 8; ++r)
        x[size_t(r)] = m[r][r] == 0.0 ? 0.0f : float(m[r][8] / m[r][r]);
    return x;
}

/// F._get_perspective_coeffs(startpoints, endpoints): float32 matrices, least squares.
std::array<double, 8> perspectiveCoeffs(const std::array<QPoint, 4> &start,
                                        const std::array<QPoint, 4> &end)
{
    std::array<float, 64> a{}; // column-major, as LAPACK reads it
    std::array<float, 8> b{};
    for (int i = 0; i < 4; ++i) {
        const float x1 = float(end[size_t(i)].x()), y1 = float(end[size_t(i)].y());
        const float x2 = float(start[size_t(i)].x()), y2 = float(start[size_t(i)].y());
        // torch.tensor([...]) of Python ints: the products are exact ints, then float32.
        const float row0[8] = {x1,
                               y1,
                               1,
                               0,
                               0,
                               0,
                               float(-qint64(start[size_t(i)].x()) * end[size_t(i)].x()),
                               float(-qint64(start[size_t(i)].x()) * end[size_t(i)].y())};
        const float row1[8] = {0,
                               0,
                               0,
                               x1,
                               y1,
                               1,
                               float(-qint64(start[size_t(i)].y()) * end[size_t(i)].x()),
                               float(-qint64(start[size_t(i)].y()) * end[size_t(i)].y())};
        for (int c = 0; c < 8; ++c) {
            a[size_t(c * 8 + 2 * i)] = row0[c];
            a[size_t(c * 8 + 2 * i + 1)] = row1[c];
        }
        b[size_t(2 * i)] = x2;
        b[size_t(2 * i + 1)] = y2;
    }
    std::array<float, 8> x = b;
    if (const SgelsFn sgels = systemSgels()) {
        const int n = 8, nrhs = 1;
        int info = 0, lwork = -1;
        float query = 0.0f;
        std::array<float, 64> work = a;
        sgels("N", &n, &n, &nrhs, work.data(), &n, x.data(), &n, &query, &lwork, &info, 1);
        std::vector<float> space(size_t(std::max(1, int(query))));
        lwork = int(space.size());
        sgels("N", &n, &n, &nrhs, work.data(), &n, x.data(), &n, space.data(), &lwork, &info, 1);
        if (info != 0)
            x = solveDouble(a, b);
    } else {
        x = solveDouble(a, b);
    }
    std::array<double, 8> coeffs;
    for (int i = 0; i < 8; ++i)
        coeffs[size_t(i)] = x[size_t(i)];
    return coeffs;
}

class RandomPerspective final : public PreparedOp
{
public:
    double distortion = 0.5;
    double p = 0.5;
    pil::Filter filter = pil::Filter::Bilinear;
    std::vector<double> fill{0.0};

    void apply(RunState &run) const override
    {
        if (!run.coin(p)) {
            run.trace->applied = false;
            run.trace->summary = QStringLiteral("not applied");
            return;
        }
        const int width = run.size().width(), height = run.size().height();
        // int(distortion_scale * half_width), as get_params truncates.
        const int dw = int(distortion * (width / 2));
        const int dh = int(distortion * (height / 2));
        TorchGenerator &g = run.rng;
        const auto draw = [&g](int lo, int hi) {
            return int(g.randint(lo, hi));
        };
        // get_params: x then y for top-left, top-right, bottom-right, bottom-left.
        const int tlx = draw(0, dw + 1), tly = draw(0, dh + 1);
        const int trx = draw(width - dw - 1, width), try_ = draw(0, dh + 1);
        const int brx = draw(width - dw - 1, width), bry = draw(height - dh - 1, height);
        const int blx = draw(0, dw + 1), bly = draw(height - dh - 1, height);
        const std::array<QPoint, 4> start{QPoint(0, 0), QPoint(width - 1, 0),
                                          QPoint(width - 1, height - 1), QPoint(0, height - 1)};
        const std::array<QPoint, 4> end{QPoint(tlx, tly), QPoint(trx, try_), QPoint(brx, bry),
                                        QPoint(blx, bly)};
        run.data.image
            = pil::transformPerspective(run.data.image, run.size(), perspectiveCoeffs(start, end),
                                        filter, pilFill(fill, channelsOf(run.data.image)));
        run.coords.valid = false;
        run.trace->summary = QStringLiteral("corners (%1, %2), (%3, %4), (%5, %6), (%7, %8)")
                                 .arg(tlx)
                                 .arg(tly)
                                 .arg(trx)
                                 .arg(try_)
                                 .arg(brx)
                                 .arg(bry)
                                 .arg(blx)
                                 .arg(bly);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomPerspective>();
    op->distortion = number(a[u"distortion_scale"], QStringLiteral("distortion_scale"));
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->filter = interpolation(a[u"interpolation"]);
    if (op->filter != pil::Filter::Nearest && op->filter != pil::Filter::Bilinear
        && op->filter != pil::Filter::Bicubic)
        fail(QStringLiteral("perspective supports NEAREST, BILINEAR and BICUBIC only"));
    op->fill = fillValues(a[u"fill"]);
    return op;
}

} // namespace

const TransformDefinition &randomPerspective()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomPerspective"),
        .parameters
        = {opt(QStringLiteral("distortion_scale"), V::real(0.5)),
           opt(QStringLiteral("p"), V::real(0.5)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("BILINEAR"))),
           opt(QStringLiteral("fill"), V::integer(0))},
        .description
        = QStringLiteral("Warp the corners by a random perspective with probability p"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
