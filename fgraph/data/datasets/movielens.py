"""MovieLens 100K with user and movie side information, in the 7-field protocol of GraphFM."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import Schema, categorical, multi_valued, numeric
from ...errors import InputFileError
from ._common import DatasetSplits, count_labels, locate, random_split, read_table

FOLDER = "movielens_100k"
FILES = ("u.data.gz", "u.user", "u.item", "u.genre")
LABEL = "label"
FIELDS = ("gender", "age", "occupation", "zip", "genres", "release_year", "timestamp")

#: Rows left after dropping the ratings of 3, and their positives (ratings 4 and 5).
EXPECTED_ROWS = 72_855
EXPECTED_POSITIVES = 55_375

#: The MovieLens-1M age groups: (lowest age of the group, its label).
AGE_GROUPS = ((0, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"), (50, "50-55"),
              (56, "56+"))


def age_group(age) -> np.ndarray:
    """The MovieLens-1M age group of each age, as a string (``"under 18"``, ``"18-24"``, ..., ``"56+"``)."""
    age = np.asarray(age, dtype=float)
    lows = np.array([lo for lo, _ in AGE_GROUPS], dtype=float)
    names = np.array([name for _, name in AGE_GROUPS], dtype=object)
    pos = np.searchsorted(lows, age, side="right") - 1
    return names[np.clip(pos, 0, len(names) - 1)]


def release_bucket(dates: pd.Series) -> pd.Series:
    """The release year of ``dd-Mon-yyyy`` dates as a category: the decade (``"1950s"``) before 1970, the
    year itself (``"1995"``) from 1970 on; missing or unreadable dates give a missing value."""
    year = pd.to_datetime(dates, format="%d-%b-%Y", errors="coerce").dt.year
    out = pd.Series(pd.NA, index=dates.index, dtype="str")
    known = year.notna()
    y = year[known].astype(int)
    out[known] = np.where(y < 1970, (y // 10 * 10).astype(str) + "s", y.astype(str))
    return out


def movielens100k(data_dir=None, *, seed: int = 0) -> DatasetSplits:
    """MovieLens 100K as a 7-field binary task (GraphFM's protocol), split 80/10/10 at random.

    Files (in ``data_dir/movielens_100k/``, or ``data_dir`` itself): ``u.data.gz`` (``user item rating
    timestamp``, tab-separated), ``u.user``, ``u.item`` (Latin-1) and ``u.genre`` (``|``-separated).

    Fields (no user or movie id):

    * ``gender``, ``occupation``, ``zip`` (a string: some are Canadian postcodes): categorical;
    * ``age``: the MovieLens-1M age group, ``"under 18"``, ``"18-24"``, ``"25-34"``, ``"35-44"``,
      ``"45-49"``, ``"50-55"``, ``"56+"``;
    * ``genres``: the movie's genre names joined by ``|`` (at most 6; multi-valued);
    * ``release_year``: the decade (``"1950s"``) for films released before 1970, otherwise the year; missing
      for the one movie without a release date;
    * ``timestamp``: the rating's Unix time, numeric (scaled).

    Label ``label``: 1 for ratings 4 and 5, 0 for ratings 1 and 2; ratings of 3 are dropped. That leaves
    72,855 of the 100,000 ratings (55,375 positives, 76.0%), split 58,285 / 7,285 / 7,285 by ``seed``.
    """
    folder, _ = locate("movielens100k", data_dir, FOLDER, required=FILES)

    ratings = read_table(folder / "u.data.gz", sep="\t", header=None,
                         names=["user_id", "item_id", "rating", "timestamp"], dtype=np.int64)
    # Integer columns are parsed by the reader, so a bad cell is an error naming its file.
    users = read_table(folder / "u.user", sep="|", header=None,
                       names=["user_id", "age", "gender", "occupation", "zip"],
                       dtype={"user_id": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str},
                       keep_default_na=False)
    genre_table = read_table(folder / "u.genre", sep="|", header=None, names=["genre", "code"],
                             dtype={"genre": str, "code": np.int64}, keep_default_na=False)
    genre_names = genre_table.sort_values("code")["genre"].tolist()
    items = read_table(folder / "u.item", sep="|", header=None, encoding="latin-1",
                       dtype={"item_id": np.int64, "title": str, "release_date": str, "video_release_date": str,
                              "url": str, **{g: np.int8 for g in genre_names}},
                       keep_default_na=False,
                       names=["item_id", "title", "release_date", "video_release_date", "url"] + genre_names)
    for file, ids in (("u.user", users["user_id"]), ("u.item", items["item_id"])):
        if ids.duplicated().any():
            raise InputFileError(f"{folder / file}: the id {int(ids[ids.duplicated()].iloc[0])} is listed twice")

    flags = items[genre_names].astype(np.int8).to_numpy().astype(bool)
    names = np.array(genre_names, dtype=object)
    genres = ["|".join(names[row]) for row in flags]  # 1,682 movies
    item_side = pd.DataFrame({
        "item_id": items["item_id"].astype(np.int64),
        "genres": pd.array([g if g else pd.NA for g in genres], dtype="str"),
        "release_year": release_bucket(items["release_date"]).to_numpy(),
    })
    user_side = pd.DataFrame({
        "user_id": users["user_id"].astype(np.int64),
        "gender": users["gender"],
        "age": pd.array(age_group(users["age"].astype(int)), dtype="str"),
        "occupation": users["occupation"],
        "zip": users["zip"],
    })

    rated = ratings[ratings["rating"] != 3].reset_index(drop=True)
    for column, side, file in (("user_id", user_side, "u.user"), ("item_id", item_side, "u.item")):
        unknown = ~rated[column].isin(side[column])
        if unknown.any():
            raise InputFileError(f"{folder / 'u.data.gz'}: {int(unknown.sum())} rating(s) name a {column} missing "
                                 f"from {file} (e.g. {int(rated.loc[unknown, column].iloc[0])})")
    table = rated.merge(user_side, on="user_id", how="left", validate="many_to_one")
    table = table.merge(item_side, on="item_id", how="left", validate="many_to_one")
    table[LABEL] = (table["rating"] > 3).astype(np.int64)
    table["timestamp"] = table["timestamp"].astype(np.int64)
    table = table[list(FIELDS) + [LABEL]]

    train, valid, test = random_split(table, seed=seed)
    schema = Schema((categorical("gender"), categorical("age"), categorical("occupation"), categorical("zip"),
                     multi_valued("genres", max_tokens=6, sep="|"), categorical("release_year"),
                     numeric("timestamp", treatment="scale")), label=LABEL)
    meta = count_labels({"all": table, "train": train, "valid": valid, "test": test}, LABEL)
    meta.update({"ratings": int(len(ratings)), "dropped_rating_3": int(len(ratings) - len(table)),
                 "seed": seed, "folder": str(folder)})
    return DatasetSplits(train, valid, test, schema, name="movielens100k", meta=meta)
