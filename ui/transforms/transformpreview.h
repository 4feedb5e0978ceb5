#pragma once

#include "transforms/imagetile.h"
#include "transforms/transformjobs.h"

#include <QList>
#include <QWidget>

class QGridLayout;
class QHBoxLayout;
class QLabel;
class QScrollArea;
class QSplitter;
class QTabBar;

namespace ifs {

/// The preview's display: the original with the crop boxes of several draws, a grid of random
/// draws of the train pipeline, the val result, output statistics and a step-by-step strip.
/// It only shows PreviewResults; TransformsWorkspace asks for them.
class TransformPreview : public QWidget
{
    Q_OBJECT

public:
    explicit TransformPreview(QWidget *parent = nullptr);

    void setResult(const PreviewResult &result);
    const PreviewResult &result() const { return m_result; }
    /// The whole preview failed (the image cannot be read).
    void setFailure(const QString &message);
    /// Nothing to show (no image yet).
    void clear(const QString &message = {});
    void setBusy(bool busy);
    /// Which pipeline the strip traces: false = the selected train draw, true = val.
    void setStripShowsVal(bool val);
    bool stripShowsVal() const;

    ImageTile *originalTile() const { return m_original; }
    ImageTile *valTile() const { return m_val; }
    const QList<ImageTile *> &trainTiles() const { return m_trainTiles; }
    const QList<ImageTile *> &stepTiles() const { return m_stepTiles; }
    QLabel *trainErrorLabel() const { return m_trainError; }
    QLabel *trainStatsLabel() const { return m_trainStats; }
    QLabel *valStatsLabel() const { return m_valStats; }
    QSplitter *splitter() const { return m_splitter; }

Q_SIGNALS:
    /// A train draw was clicked: show its steps.
    void drawClicked(int draw);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void rebuildTrainTiles(int count);
    void layoutTrainTiles();
    void sizeStepTiles();
    void showStrip();
    void updateBoxes();
    QString statsText(const PreviewOutput &output) const;

    PreviewResult m_result;
    QSplitter *m_splitter;
    QLabel *m_trainTitle;
    QLabel *m_valTitle;
    QLabel *m_busy;
    ImageTile *m_original;
    ImageTile *m_val;
    QWidget *m_grid;
    QGridLayout *m_gridLayout;
    QLabel *m_trainError;
    QList<ImageTile *> m_trainTiles;
    int m_gridColumns = 0;
    QLabel *m_trainStats;
    QLabel *m_valStats;
    QTabBar *m_stripTabs;
    QLabel *m_stripTitle;
    QScrollArea *m_stripScroll;
    QWidget *m_strip;
    QHBoxLayout *m_stripLayout;
    QList<ImageTile *> m_stepTiles;
};

} // namespace ifs
