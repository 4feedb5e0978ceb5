#pragma once

#include <QStringList>
#include <QWidget>

#include <utility>
#include <vector>

namespace ifs {

/// A confusion matrix painted as a grid: true classes down the left, predicted classes across
/// the top, the count in each cell and a shade by the share of its row (blue on the diagonal,
/// orange off it). Cells grow to fill the widget and shrink to a readable minimum (then the
/// widget asks for more room: put it in a QScrollArea). Clicking a cell (or moving with the
/// arrow keys) selects it and emits cellClicked().
class ConfusionMatrixView : public QWidget
{
    Q_OBJECT

public:
    explicit ConfusionMatrixView(QWidget *parent = nullptr);

    /// `confusion`: classes² counts, row = true class, column = predicted.
    void setMatrix(const QStringList &classes, const std::vector<qint64> &confusion);
    void clear();

    int classCount() const { return int(m_classes.size()); }
    const QStringList &classes() const { return m_classes; }
    qint64 count(int trueClass, int predictedClass) const;
    qint64 total() const { return m_total; }
    qint64 rowTotal(int trueClass) const;

    /// Shows each row's shares in percent instead of counts (the shading is by share anyway).
    void setNormalized(bool normalized);
    bool isNormalized() const { return m_normalized; }

    /// The cell's rectangle in widget coordinates (empty when out of range).
    QRect cellRect(int trueClass, int predictedClass) const;
    /// The cell under `pos`, or {-1, -1}.
    std::pair<int, int> cellAt(const QPoint &pos) const;
    void setSelectedCell(int trueClass, int predictedClass);
    std::pair<int, int> selectedCell() const { return m_selected; }
    /// The off-diagonal cell with the most images ({-1, -1} when every prediction is right).
    std::pair<int, int> worstCell() const;

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

Q_SIGNALS:
    void cellClicked(int trueClass, int predictedClass);

protected:
    void paintEvent(QPaintEvent *event) override;
    void mousePressEvent(QMouseEvent *event) override;
    void keyPressEvent(QKeyEvent *event) override;
    bool event(QEvent *event) override;

private:
    struct Geometry
    {
        int left = 0; // x of the first column
        int top = 0; // y of the first row
        int cell = 0; // cell side
        int labelWidth = 0;
        int labelHeight = 0;
    };
    Geometry geometry() const;
    int labelExtent() const;
    QString cellText(int trueClass, int predictedClass) const;
    QString cellToolTip(int trueClass, int predictedClass) const;

    QStringList m_classes;
    std::vector<qint64> m_confusion;
    std::vector<qint64> m_rowTotals;
    qint64 m_total = 0;
    bool m_normalized = false;
    std::pair<int, int> m_selected{-1, -1};
    mutable int m_labelExtent = -1;
};

} // namespace ifs
